"""The music down an Asterisk caller's line (issue 16), end to end on real sockets: a
caller on the fake Asterisk (relay/rehearsal/fake_ari.py, its media side
fake_ari_media.py), a fake billboard feeding ``/phone-audio`` with bundles the real
`PhoneMixer` renders from notes, and the fake's RTP socket recording what the relay's
external media channel sends. How the gateway does it: relay/gateways/ari_media.py."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.phone_mix import FRAME, RATE, PhoneMixer
from billboard.samples import SampleSet, load_sample_sets
from relay.gateways.ari_core import basic_auth
from relay.gateways.dtmf import ulaw_decode
from relay.gateways.rtp_events import RtpPacket, parse_rtp
from relay.phone_audio import FRAME_S, encode_bundle
from relay.rehearsal.fake_ari import FakeAri
from tests.billboard.audio import midi_hz
from tests.support.relay import BILLBOARD, RunningRelay, StartRelay, recv, until

from .ari_calls import CALLER, KEY, PASSWORD, USER, digit, left
from .ari_relay import ari_config, ari_health, call_and_join, music_gone, music_of, start
from .listeners import nothing_published, subscribe

SOUNDS = Path(__file__).resolve().parents[3] / "sounds"
LEAD, PLUCK = 76, 67  # E5 659 Hz, G4 392 Hz: inside the phone's band


@pytest.fixture(scope="module")
def sets() -> dict[str, SampleSet]:
    return load_sample_sets(SOUNDS)


def tune(seconds: float) -> list[NoteOn | NoteOff]:
    """The lead and the pluck an 8th apart, each note a 16th long."""
    notes: list[NoteOn | NoteOff] = []
    for n in range(int(seconds / 0.125)):
        t = n * 0.125
        track, note = ("lead", LEAD) if n % 2 == 0 else ("pluck", PLUCK)
        notes.append(NoteOn(time=t, step=n, track=track, channel=0, note=note, velocity=110))
        notes.append(NoteOff(time=t + 0.1, step=n, track=track, channel=0, note=note))
    return notes


def billboard_frames(sets: dict[str, SampleSet], seconds: float) -> list[tuple[bytes, bytes]]:
    """The billboard's side: the tune rendered by the phone mixer, 20 ms at a time, as
    (the bundle it sends, the caller's own frame in it). The caller holds the lead."""
    mixer = PhoneMixer(sets, tuple(DEFAULT_TRACKS))
    for note in tune(seconds):
        mixer.note_on(note) if isinstance(note, NoteOn) else mixer.note_off(note)
    out = []
    for seq in range(round(seconds / FRAME_S)):
        frame = mixer.frame(seq * FRAME_S, holders=["lead"])
        mixes = [frame.mixes[None].ulaw, frame.mixes["lead"].ulaw]
        out.append((encode_bundle(seq, mixes, {CALLER: 1}), mixes[1]))
    return out


async def feed(relay: RunningRelay, bundles: Sequence[bytes]) -> None:
    """A fake billboard: the bundles over /phone-audio, one per 20 ms of the loop's clock."""
    headers = {"Authorization": f"Bearer {BILLBOARD}"}
    ws = await relay.connect("/phone-audio", headers=headers)
    loop = asyncio.get_running_loop()
    due = loop.time()
    for bundle in bundles:
        await ws.send_bytes(bundle)
        due += FRAME_S
        await asyncio.sleep(max(0.0, due - loop.time()))
    await ws.close()


def external_media_request(fake: FakeAri) -> dict[str, str]:
    [query] = [q for m, p, q in fake.requests if p == "/ari/channels/externalMedia"]
    return query


def spectrum_holds(audio: np.ndarray, hz: float) -> bool:
    """`hz` stands 30 dB over the spectrum's median."""
    power = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float(power[np.abs(freqs - hz) < 15].sum()) > 1000 * float(np.median(power))


async def test_a_caller_hears_the_notes_played_as_rtp_from_their_external_media_channel(
    start_relay: StartRelay, fake: FakeAri, sets: dict[str, SampleSet]
) -> None:
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    bridge, media = await music_of(fake, channel_id)
    asked = external_media_request(fake)
    host, port = asked.pop("external_host").rsplit(":", 1)
    assert asked == {
        "app": "dialjam",
        "format": "ulaw",
        "encapsulation": "rtp",
        "transport": "udp",
        "direction": "both",
        "channelId": media,
    }
    # The caller is in a mixing bridge with it, muted (their voice stays in Asterisk)
    # and keeping their keys out of the bridge.
    assert fake.media.bridges[bridge].json["bridge_type"] == "mixing"
    assert fake.media.bridges[bridge].members[channel_id] == {"mute": "true", "absorbDTMF": "true"}

    frames = billboard_frames(sets, 2.0)
    await feed(relay, [bundle for bundle, _ in frames])
    recorder = fake.media.heard_by(channel_id)
    assert recorder is not None

    phone = relay.state.phone
    assert phone is not None

    async def heard() -> bool:
        """Every bundle in, (nearly) all played, and each packet the relay sent heard. A
        busy machine may drop a few to the jitter buffer's bound, or leave a last few
        that never reach its target to start playing again."""
        sent = (await ari_health(relay))["music"]["packets"]
        all_in = phone.buffer.stats.received == len(frames)
        return all_in and len(phone.buffer) < phone.buffer.target and len(recorder.packets) == sent

    await until(heard)
    packets: list[RtpPacket] = []
    for _, data, source in recorder.packets:
        packet = parse_rtp(data)
        assert packet is not None
        assert source == (host, int(port))  # sent from the socket Asterisk was told of
        packets.append(packet)
    assert len(packets) >= len(frames) // 2, len(packets)  # 1 s of music at least
    # One stream of PCMU: its SSRC, no sequence number missed, time in 20 ms steps.
    assert {(p.version, p.payload_type, p.ssrc, len(p.payload)) for p in packets} == {
        (2, 0, packets[0].ssrc, FRAME)
    }
    assert all((b.sequence - a.sequence) % 2**16 == 1 for a, b in itertools.pairwise(packets))
    steps = [(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(packets)]
    assert all(step > 0 and step % FRAME == 0 for step in steps)
    assert packets[0].marker
    # The caller's own mix (the lead 6 dB up), every frame of it in the billboard's order.
    own = [frame for _, frame in frames]
    at = [own.index(p.payload) for p in packets if p.payload in own]
    assert len(at) == len(packets) and at == sorted(at)
    audio = ulaw_decode(b"".join(p.payload for p in packets)).astype(np.float64) / 32768
    assert 20 * np.log10(np.sqrt(np.mean(audio**2))) > -30  # music, not silence
    assert spectrum_holds(audio, midi_hz(LEAD)) and spectrum_holds(audio, midi_hz(PLUCK))
    health = (await ari_health(relay))["music"]
    assert health["calls"] == 1 and health["started"] == 1 and health["failed"] == 0


async def test_the_music_joins_the_bridge_once_its_channel_has_entered_the_app(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    """Asterisk puts the external channel in the app in its own time (its StasisStart
    may come after the REST answer); a bridge refuses it before (422)."""
    fake.media.enter_after_s = 0.5
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    _, media = await music_of(fake, channel_id)
    added = [q["channel"] for _, p, q in fake.requests if p.endswith("/addChannel")]
    assert added == [channel_id, media]  # each once: never before it had entered
    assert "ari_rest_422" not in relay.state.errors


async def test_a_hang_up_stops_the_rtp_and_deletes_the_external_channel_and_the_bridge(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    bridge, media = await music_of(fake, channel_id)
    phone = relay.state.phone
    assert phone is not None and phone.listeners == 1
    await fake.hang_up(channel_id)
    await fake.ended(media)
    await until(music_gone(fake))
    deletes = [p for m, p, _ in fake.requests if m == "DELETE"]
    assert sorted(deletes) == [f"/ari/bridges/{bridge}", f"/ari/channels/{media}"]
    assert phone.listeners == 0
    assert (await ari_health(relay))["music"]["calls"] == 0


async def test_a_hang_up_while_the_music_is_being_set_up_leaves_nothing_behind(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    """The caller is in the bridge, the external channel not yet in the app (a slow
    dial thread): both are deleted, and the channel never enters."""
    fake.media.enter_after_s = 1.0
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)

    async def caller_bridged() -> bool:
        return fake.media.bridge_of(channel_id) is not None

    await until(caller_bridged)
    [media] = fake.media.externals
    await fake.hang_up(channel_id)
    assert await recv(sub) == left()
    await until(music_gone(fake))
    assert fake.hung_up == {media: "normal"}
    await asyncio.sleep(fake.media.enter_after_s)  # when it would have entered
    assert media not in fake.channels
    assert relay.state.phone is not None and relay.state.phone.listeners == 0
    await nothing_published(relay, sub)
    assert (await ari_health(relay))["music"] == {
        "calls": 0,
        "started": 0,
        "failed": 0,
        "cleaned": 0,
        "packets": 0,
    }


async def test_the_external_media_channels_entering_the_app_are_never_callers(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    """Ours (its StasisStart came, no join for it), and one another client made in our
    app: not a caller, and hung up as a leftover."""
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    _, media = await music_of(fake, channel_id)
    assert media in fake.channels  # it entered the app: Asterisk sent its StasisStart
    stranger = await other_client_makes_external_media(fake)
    await fake.ended(stranger)
    await nothing_published(relay, sub)
    health = await ari_health(relay)
    assert health["callers"] == 1 and health["calls_entered"] == 1
    assert health["music"]["cleaned"] == 1
    await fake.press(channel_id, "5")  # the caller plays on, in the bridge
    assert await recv(sub) == digit("5")


def ari_client() -> aiohttp.ClientSession:
    """Another ARI client's session (HTTP basic auth)."""
    return aiohttp.ClientSession(headers={"Authorization": basic_auth(USER, PASSWORD)})


async def other_client_makes_external_media(fake: FakeAri) -> str:
    """``POST /ari/channels/externalMedia`` into the app, as another ARI client would."""
    params = {"app": "dialjam", "external_host": "127.0.0.1:9", "format": "ulaw"}
    url = f"http://127.0.0.1:{fake.port}/ari/channels/externalMedia"
    async with ari_client() as session, session.post(url, params=params) as r:
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        assert set(body["channelvars"]) == {"UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT"}
        return str(body["id"])


async def test_after_a_reconnect_leftover_bridges_and_external_channels_are_deleted(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    """Left by a teardown that could not reach Asterisk: found and deleted; the bridge
    of a caller still in it is kept."""
    _, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    bridge, media = await music_of(fake, channel_id)
    await fake.drop()  # the socket is down: what happens now reaches no client
    base = f"http://127.0.0.1:{fake.port}/ari"
    async with ari_client() as session:
        leftover = {"type": "mixing", "bridgeId": "dialjam-music-0123456789ab"}
        async with session.post(f"{base}/bridges", params=leftover) as made:
            assert made.status == 200
        others = {"type": "mixing", "bridgeId": "someone-elses"}
        async with session.post(f"{base}/bridges", params=others) as made:
            assert made.status == 200
    stranger = await other_client_makes_external_media(fake)
    await fake.wait_clients(2)
    await fake.ended(stranger)

    async def cleaned() -> bool:
        return "dialjam-music-0123456789ab" not in fake.media.bridges

    await until(cleaned)
    assert bridge in fake.media.bridges and media in fake.channels  # the caller's: kept
    assert "someone-elses" in fake.media.bridges  # not ours
    assert fake.media.heard_by(channel_id) is not None


async def test_when_another_client_takes_the_app_the_music_is_torn_down_then_comes_back(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    _, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    bridge, _ = await music_of(fake, channel_id)
    async with ari_client() as session:
        url = f"ws://127.0.0.1:{fake.port}/ari/events"
        other = await session.ws_connect(url, params={"app": "dialjam"})
        assert (await recv(sub))["reason"] == "lost"
        await until(music_gone(fake))
        await other.close()
    # The app is free again: the relay takes it back, the caller is found and rejoins,
    # and their music starts again in a new bridge.
    assert (await recv(sub, timeout=30))["event"] == "join"
    again, _ = await music_of(fake, channel_id)
    assert again != bridge


async def test_a_call_whose_music_asterisk_refuses_goes_on_without_it(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    fake.failures["/externalMedia"] = 500
    channel_id, _ = await call_and_join(fake, sub)

    async def failed() -> bool:
        return relay.state.errors.get("ari_media_refused") == 1

    await until(failed)
    await fake.press(channel_id, "5")
    assert await recv(sub) == digit("5")
    assert not fake.media.bridges and relay.state.phone is not None
    assert relay.state.phone.listeners == 0
    assert (await ari_health(relay))["music"]["failed"] == 1


async def test_with_the_phone_music_off_no_external_media_is_made(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay = await start_relay(pseudonym_key=KEY, ari=ari_config(fake), phone_music=False)
    sub = await subscribe(relay)
    await fake.wait_client()
    channel_id, _ = await call_and_join(fake, sub)
    await fake.press(channel_id, "1")
    assert await recv(sub) == digit("1")
    assert not fake.media.externals and not fake.media.bridges
    assert (await ari_health(relay))["music"] is None


async def test_a_media_host_that_is_not_this_machines_is_said_and_the_call_goes_on(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    relay, sub = await start(start_relay, fake, media_host="192.0.2.1")  # TEST-NET-1
    channel_id, _ = await call_and_join(fake, sub)

    async def said() -> bool:
        return relay.state.errors.get("ari_media_bind") == 1

    await until(said)
    assert "[ari] media_host" in caplog.text
    assert not fake.media.externals  # nothing asked of Asterisk
    await fake.press(channel_id, "3")
    assert await recv(sub) == digit("3")
