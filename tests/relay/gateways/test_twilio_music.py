"""The music down a Twilio call, on a real relay: a fake billboard feeds /phone-audio
with bundles the real `PhoneMixer` renders from notes; fake Twilio calls
(``tests/support/twilio.py``: the documented messages, marks echoed once the audio
before them has played in real time) hear their mix as ``media`` every 20 ms; marks
measure Twilio's backlog and a clear brings it back. No timing is asserted tightly:
the pacing figures are printed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
import pytest

from relay.config import TwilioConfig
from relay.gateways.twilio import TWILIO
from relay.gateways.twilio_media import BACKLOG_BOUND_S
from relay.phone_audio import FRAME_BYTES, encode_bundle, parse_bundle
from tests.support.phone_rtp import (
    PhoneBillboard,
    level_at,
    melody,
    midi_hz,
    render_bundles,
    rms_dbfs,
    stands_out,
)
from tests.support.relay import ANSWER_S, RunningRelay, StartRelay
from tests.support.relay import until as relay_until
from tests.support.twilio import KEY, PUBLIC, TOKEN, TwilioCall, samples
from tests.support.websocket import client_frame, upgrade_request

from .listeners import billboard_says, kick

A4, C5 = 69, 72  # the lead's A (440 Hz), the pluck's C (523 Hz)


async def start(start_relay: StartRelay, **relay: Any) -> RunningRelay:
    return await start_relay(
        public_url=PUBLIC, pseudonym_key=KEY, twilio=TwilioConfig(auth_token=TOKEN), **relay
    )


async def listening(relay: RunningRelay, n: int) -> None:
    phone = relay.state.phone
    assert phone is not None
    async with asyncio.timeout(ANSWER_S):
        while phone.listeners != n:
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def billboard(relay: RunningRelay, bundles: list[bytes]) -> AsyncIterator[PhoneBillboard]:
    """The fake billboard feeding `bundles` in real time while the block runs."""
    feed = PhoneBillboard(relay)
    await feed.start(bundles)
    try:
        yield feed
    finally:
        await feed.close()


def steady(seconds: float) -> list[bytes]:
    """Bundles whose sound does not matter: a constant μ-law frame."""
    mix = b"\x20" * FRAME_BYTES
    return [encode_bundle(seq, [mix], {}) for seq in range(1, round(seconds / 0.02) + 1)]


async def until(condition: Any, timeout: float = ANSWER_S) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def db(ratio: float) -> float:
    return float(10 * np.log10(ratio))


async def test_a_caller_hears_the_notes_down_the_line_and_their_own_part_louder(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    holder = await TwilioCall(relay).dial()
    other = await TwilioCall(
        relay,
        number="+14155550177",
        call_sid="CA" + "1" * 32,
        stream_sid="MZ" + "2" * 32,
    ).dial()
    await listening(relay, 2)
    # The lead (held by the first caller) strikes A4, the pluck C5, in turn, for 3 s.
    bundles = render_bundles(melody({"lead": A4, "pluck": C5}, 3.0), 3.0, {holder.caller: "lead"})
    async with billboard(relay, bundles) as fed:
        await fed.done(ANSWER_S)
        await holder.frames_at_least(120)
        await other.frames_at_least(120)
    heard = {call: call.heard() for call in (holder, other)}
    for call, x in heard.items():
        assert rms_dbfs(x) > -40, "the call heard silence"
        assert stands_out(x, midi_hz(A4)) > 20 and stands_out(x, midi_hz(C5)) > 20
        assert call.unreadable == 0
    lead_over_pluck = {
        call: db(level_at(x, midi_hz(A4)) / level_at(x, midi_hz(C5))) for call, x in heard.items()
    }
    own_louder = lead_over_pluck[holder] - lead_over_pluck[other]
    assert own_louder > 3.0, lead_over_pluck  # +6 dB by design (billboard/phone_mix.py)
    p50, p99 = holder.pacing()
    health = (await relay.healthz())["twilio"]
    print(
        f"\ntwilio music: {len(holder.frames)} frames, own part +{own_louder:.1f} dB; "
        f"interarrival p50 {p50:.1f} ms, p99 {p99:.1f} ms; Twilio backlog "
        f"p50 {health['backlog_ms_p50']} ms, p99 {health['backlog_ms_p99']} ms "
        f"({health['marks_echoed']} marks echoed, {health['clears']} clears)"
    )
    assert health["media_sent"] >= 240 and health["music_listening"] == 2
    assert health["marks_echoed"] >= 2
    await holder.stop()
    await other.stop()
    await listening(relay, 0)


async def test_a_note_reaches_the_caller_one_jitter_budget_after_the_billboard_sends_it(
    start_relay: StartRelay,
) -> None:
    """The relay's share of a key press's way to the caller's ear: from the bundle
    that starts a note leaving the billboard to its sound arriving at Twilio (the
    jitter buffer's 60 ms, up to a tick's wait, the socket). Printed; the bound is
    only a sanity check for a loaded machine."""
    relay = await start(start_relay)
    call = await TwilioCall(relay).dial()
    await listening(relay, 1)
    tune = [dataclasses.replace(n, time=n.time + 1.0) for n in melody({"lead": A4}, 1.0)]
    bundles = render_bundles(tune, 2.0, {call.caller: "lead"})  # silent for its first second
    async with billboard(relay, bundles) as fed:
        await fed.done(ANSWER_S)
        await until(lambda: call.onset() is not None)
        sent_at = fed.sent_at
    heard = call.onset()
    assert heard is not None
    onset = round(1.0 / 0.02)  # the bundle whose frame starts the first note
    first = [rms_dbfs(samples(parse_bundle(b).mixes[1])) > -45 for b in bundles].index(True)
    assert first == onset
    delay_ms = (call.arrivals[heard] - sent_at[onset]) * 1000
    budget = relay.state.phone.buffer.budget_ms if relay.state.phone else 0
    print(
        f"\nbillboard → Twilio caller: a note's onset in {delay_ms:.0f} ms "
        f"(jitter budget {budget:.0f} ms)"
    )
    assert 0 < delay_ms < 1000
    await call.stop()


async def test_a_twilio_that_stops_echoing_marks_is_cleared_and_the_music_goes_on(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    call = await TwilioCall(relay).dial()
    await listening(relay, 1)
    async with billboard(relay, steady(30.0)):
        await until(lambda: call.marks_echoed)  # marks work on this stream
        call.echo_marks = False
        stopped = asyncio.get_running_loop().time()
        await until(lambda: call.clears)
        assert call.clears[0] - stopped > BACKLOG_BOUND_S  # not before the bound
        after = len(call.frames)
        await call.frames_at_least(after + 10)  # the music goes on
    health = (await relay.healthz())["twilio"]
    assert health["clears"] >= 1
    await call.stop()


async def test_a_twilio_playing_slower_than_real_time_is_cleared_when_its_backlog_passes_the_bound(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    call = await TwilioCall(relay, speed=0.5).dial()  # its backlog grows 20 ms a frame
    await listening(relay, 1)
    async with billboard(relay, steady(30.0)):
        await until(lambda: call.clears)
        assert call.playback.clears == 1
    health = (await relay.healthz())["twilio"]
    assert health["clears"] >= 1
    assert health["backlog_ms_p99"] > BACKLOG_BOUND_S * 1000  # the echo that told
    async with relay.session.get(f"{relay.url}/metrics") as response:
        metrics = await response.text()
    p99 = f'dialjam_gateway{{figure="backlog_ms_p99",gateway="twilio"}} {health["backlog_ms_p99"]}'
    assert p99 in metrics, [line for line in metrics.splitlines() if "twilio" in line]
    await call.stop()


async def test_a_twilio_that_stops_reading_is_dropped_to_not_buffered_in_the_relay(
    start_relay: StartRelay,
) -> None:
    """A Twilio side that stops reading (a raw socket with a small receive buffer,
    speaking RFC 6455 itself): past a kernel buffer held small, the relay writes no
    more than `TRANSPORT_BYTES` and drops the oldest frames, rather than the kernel
    (4 MB) or aiohttp (64 KiB) holding seconds to minutes of audio."""
    relay = await start(start_relay)
    call = TwilioCall(relay)
    await call.answer()
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", relay.port))
        headers = {name.replace("-", "_"): value for name, value in call.stream_headers().items()}
        await loop.sock_sendall(sock, upgrade_request("/twilio/stream", **headers))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += await loop.sock_recv(sock, 1)  # the 101 only: no frame read after it
        assert answer.startswith(b"HTTP/1.1 101"), answer
        for message in call.opening():
            await loop.sock_sendall(sock, client_frame(orjson.dumps(message)))
        await listening(relay, 1)
        music = relay.app[TWILIO].music
        async with billboard(relay, steady(60.0)):
            await until(lambda: music.frames_dropped > 0, timeout=30.0)
            written = music.frames_sent
            await asyncio.sleep(2.0)  # 100 frames more from the feed
            # aiohttp alone would take ~160 more (64 KiB) before making the writer wait.
            assert music.frames_sent - written < 30
            assert music.frames_dropped > 50
        print(f"\nstuck Twilio: {written} frames written before the relay dropped")
        assert written < 200  # under 4 s of audio held between the relay and the peer
    finally:
        sock.close()


@pytest.mark.parametrize("ending", ["stop", "close", "kick"])
async def test_the_music_stops_when_the_call_ends_or_is_kicked(
    start_relay: StartRelay, ending: str
) -> None:
    relay = await start(start_relay)
    call = await TwilioCall(relay).dial()
    await listening(relay, 1)
    async with billboard(relay, steady(30.0)):
        await call.frames_at_least(5)
        if ending == "stop":
            await call.stop()
        elif ending == "close":
            await call.close()
        else:
            await billboard_says(relay, "dialjam", kick(call.caller))
            assert call.ws is not None
            await until(lambda: call.ws is not None and call.ws.closed)
        await listening(relay, 0)
    assert (await relay.healthz())["twilio"]["music_listening"] == 0


async def test_with_the_phone_music_off_a_call_gets_no_media(start_relay: StartRelay) -> None:
    relay = await start(start_relay, phone_music=False)
    call = await TwilioCall(relay).dial()
    await call.dtmf("5")
    health: dict[str, Any] = {}

    async def one_stream() -> bool:
        nonlocal health
        health = (await relay.healthz())["twilio"]
        return bool(health["streams"] == 1)

    await relay_until(one_stream)
    assert health == {"streams": 1, "music": None}
    await asyncio.sleep(0.3)  # time enough for a few frames, had any been sent
    assert call.frames == []
    await call.stop()
