"""The music down an Asterisk caller's line (issue 16), end to end on real sockets: a
caller on the fake Asterisk (relay/rehearsal/fake_ari.py, its media side
fake_ari_media.py), a fake billboard feeding ``/phone-audio`` with bundles the real
`PhoneMixer` renders from notes (tests/support/phone_rtp.py, shared with the SIP and
Twilio music tests), and the fake's RTP socket recording what the relay's external
media channel sends. How the gateway does it: relay/gateways/ari_media.py."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
import numpy as np
import pytest

from relay.gateways.ari_core import basic_auth
from relay.gateways.dtmf import ULAW_TO_PCM
from relay.gateways.rtp_events import parse_rtp
from relay.rehearsal.fake_ari import FakeAri
from tests.support.phone_rtp import (
    LEAD,
    PLUCK,
    TUNE,
    Arrival,
    PhoneBillboard,
    decode,
    heard_frames,
    in_order,
    level_at,
    melody,
    midi_hz,
    onset,
    pacing,
    render_bundles,
    rms_dbfs,
    stands_out,
    stream_faults,
)
from tests.support.relay import StartRelay, recv, until

from .ari_calls import KEY, PASSWORD, USER, digit, left
from .ari_relay import ari_config, ari_health, call_and_join, music_gone, music_of, start
from .listeners import nothing_published, subscribe


def external_media_request(fake: FakeAri, media: str) -> dict[str, str]:
    """What the relay asked Asterisk for when it made the external channel `media`."""
    [query] = [
        q
        for _, p, q in fake.requests
        if p == "/ari/channels/externalMedia" and q.get("channelId") == media
    ]
    return dict(query)


def arrivals(fake: FakeAri, channel_id: str) -> list[Arrival]:
    """The RTP Asterisk got for `channel_id`'s caller, in arrival order."""
    recorder = fake.media.heard_by(channel_id)
    assert recorder is not None
    found = [(at, source, parse_rtp(data)) for at, data, source in recorder.packets]
    return [Arrival(at, source, packet) for at, source, packet in found if packet is not None]


async def test_two_callers_hear_the_notes_as_rtp_and_the_lead_holder_their_part_louder(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    lead_id, lead = await call_and_join(fake, sub)
    other_id, other = await call_and_join(fake, sub, "+15550000002")
    callers = {lead_id: lead["caller"], other_id: other["caller"]}
    media = {}
    for channel_id in callers:
        bridge, media[channel_id] = await music_of(fake, channel_id)
        asked = external_media_request(fake, media[channel_id])
        assert asked.pop("external_host").startswith("127.0.0.1:")
        assert asked == {
            "app": "dialjam",
            "format": "ulaw",
            "encapsulation": "rtp",
            "transport": "udp",
            "direction": "both",
            "channelId": media[channel_id],
        }
        # The caller is in a mixing bridge with it, muted (their voice stays in
        # Asterisk) and keeping their keys out of the bridge.
        assert fake.media.bridges[bridge].json["bridge_type"] == "mixing"
        assert fake.media.bridges[bridge].members[channel_id] == {
            "mute": "true",
            "absorbDTMF": "true",
        }
    bundles = render_bundles(melody(TUNE, 3.0), 3.0, {lead["caller"]: "lead"})
    billboard = PhoneBillboard(relay)
    await billboard.start(bundles)
    await billboard.done(60)
    phone = relay.state.phone
    assert phone is not None

    async def heard() -> bool:
        """Every bundle in, (nearly) all played, and each packet the relay sent heard. A
        busy machine may drop a few to the jitter buffer's bound, or leave a last few
        that never reach its target to start playing again."""
        sent = (await ari_health(relay))["music"]["sent"]
        got = sum(len(arrivals(fake, channel_id)) for channel_id in callers)
        all_in = phone.buffer.stats.received == len(bundles)
        return all_in and len(phone.buffer) < phone.buffer.target and got == sent

    await until(heard)
    heard_by = {}
    for channel_id, caller in callers.items():
        got = arrivals(fake, channel_id)
        print(pacing(f"PCMU to caller {caller}", got))
        assert len(got) >= len(bundles) // 2, len(got)  # 1.5 s of music at least
        assert stream_faults(got) == [] and {a.packet.payload_type for a in got} == {0}
        # Sent from the very socket Asterisk was told of (its strict RTP learns it).
        host, port = external_media_request(fake, media[channel_id])["external_host"].split(":")
        assert {a.source for a in got} == {(host, int(port))}
        # The bytes of this caller's own mix, in the billboard's order; not the other's.
        payloads = [a.packet.payload for a in got]
        assert in_order(payloads, heard_frames(bundles, caller))
        assert not in_order(
            payloads, heard_frames(bundles, callers[other_id if channel_id == lead_id else lead_id])
        )
        heard_by[channel_id] = audio = decode(got, alaw=False)
        assert rms_dbfs(audio) > -35  # music, levelled for the earpiece (−20 dBFS)
        assert stands_out(audio, midi_hz(LEAD)) > 20 and stands_out(audio, midi_hz(PLUCK)) > 20

    def lead_over_pluck(x: np.ndarray) -> float:
        return float(10 * np.log10(level_at(x, midi_hz(LEAD)) / level_at(x, midi_hz(PLUCK))))

    boost = lead_over_pluck(heard_by[lead_id]) - lead_over_pluck(heard_by[other_id])
    print(f"the lead holder's own part, against the shared mix: +{boost:.1f} dB")
    assert boost > 3  # OWN_BOOST_DB is 6
    health = (await ari_health(relay))["music"]
    assert health["calls"] == 2 and health["started"] == 2 and health["failed_to_start"] == 0


async def test_a_note_reaches_the_asterisk_caller_one_jitter_budget_after_the_billboard_sends_it(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    """The relay's share of a key press's way to the caller's ear: from the bundle that
    starts a note leaving the billboard to its RTP arriving at Asterisk (the jitter
    buffer's 60 ms, up to a tick's wait, the socket). Printed; the bound is only a
    sanity check for a loaded machine."""
    relay, sub = await start(start_relay, fake)
    channel_id, joined = await call_and_join(fake, sub)
    await music_of(fake, channel_id)
    tune = [dataclasses.replace(n, time=n.time + 1.0) for n in melody({"lead": LEAD}, 1.0)]
    bundles = render_bundles(tune, 2.0, {joined["caller"]: "lead"})  # silent for a second
    billboard = PhoneBillboard(relay)
    await billboard.start(bundles)
    await billboard.done(60)

    async def sounded() -> bool:
        return onset(arrivals(fake, channel_id), alaw=False) is not None

    await until(sounded)
    heard = onset(arrivals(fake, channel_id), alaw=False)
    assert heard is not None
    frames = heard_frames(bundles, joined["caller"])
    first = next(n for n, f in enumerate(frames) if rms_dbfs(ulaw_samples(f)) > -45)
    assert first == round(1.0 / 0.02)  # the bundle whose frame starts the first note
    delay_ms = (heard.at - billboard.sent_at[first]) * 1000
    budget = relay.state.phone.buffer.budget_ms if relay.state.phone else 0
    print(
        f"\nbillboard → Asterisk caller: a note's onset in {delay_ms:.0f} ms (budget {budget:.0f})"
    )
    assert 0 < delay_ms < 1000


def ulaw_samples(ulaw: bytes) -> np.ndarray:
    return ULAW_TO_PCM[np.frombuffer(ulaw, dtype=np.uint8)].astype(np.float64) / 32768


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
        "failed_to_start": 0,
        "cleaned": 0,
        "sent": 0,
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
    assert (await ari_health(relay))["music"]["failed_to_start"] == 1


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
