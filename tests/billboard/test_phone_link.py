"""The billboard's phone audio link against a real relay on a free port: bundles in
over /phone-audio with the billboard token, only the newest ever sent, a relay with
phone music off or a wrong token said once, the link never given up; and the show's
switch that turns the whole phone mix off."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from billboard.config import BillboardConfig
from billboard.phone_link import QUEUE_FRAMES, PhoneAudioLink, phone_audio_url
from billboard.show import Options, Show
from relay.config import RelayConfig
from relay.phone_audio import FRAME_BYTES, encode_bundle
from tests.support.relay import BILLBOARD, OPERATOR, StartRelay, until


def bundle(seq: int) -> bytes:
    return encode_bundle(seq, [bytes([seq % 256]) * FRAME_BYTES], {})


async def true(value: bool) -> bool:
    return value


@pytest.mark.parametrize(
    ("relay", "phone"),
    [
        ("ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8080/phone-audio"),
        ("wss://jam.example.org/ws", "wss://jam.example.org/phone-audio"),
        ("wss://example.org/jam/ws?token=x", "wss://example.org/jam/phone-audio"),
        ("wss://jam.example.org", "wss://jam.example.org/phone-audio"),
    ],
)
def test_the_phone_audio_address_is_the_relays_beside_its_ws(relay: str, phone: str) -> None:
    assert phone_audio_url(relay) == phone


async def test_bundles_reach_the_relay_and_only_the_newest_100_ms_are_ever_sent(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    feed = relay.state.phone
    assert feed is not None
    link = PhoneAudioLink(f"ws://127.0.0.1:{relay.port}/phone-audio", BILLBOARD)
    link.offer(bundle(0))  # before it is connected: dropped, never kept
    task = asyncio.create_task(link.run())
    await until(lambda: true(link.connected and feed.connected))
    for seq in range(1, 11):  # ten frames in one turn of the loop: a stalled writer
        link.offer(bundle(seq))
    await until(lambda: true(feed.buffer.stats.received == QUEUE_FRAMES))
    assert (link.sent, link.dropped) == (QUEUE_FRAMES, 1 + 10 - QUEUE_FRAMES)
    frames = [b.mixes[0] for b, _ in feed.buffer._frames]
    assert frames == [bytes([seq]) * FRAME_BYTES for seq in range(6, 11)]  # the newest
    for received in range(6, 9):  # one at a time, as the phone thread hands them over
        link.offer(bundle(5 + received))
        await until(lambda: true(feed.buffer.stats.received >= received))  # noqa: B023
    assert link.status == "connected" and link.health()["sent"] == 8
    health = (await relay.healthz())["phone"]
    assert health["feed"] == "connected" and health["received"] == 8
    task.cancel()


async def test_a_relay_with_phone_music_off_is_said_once_and_asked_again_later(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await start_relay(phone_music=False)
    link = PhoneAudioLink(f"ws://127.0.0.1:{relay.port}/phone-audio", BILLBOARD)
    caplog.set_level(logging.WARNING, "billboard.phone_link")
    task = asyncio.create_task(link.run())
    await until(lambda: true(link.status == "off at the relay"))
    link._refused(404)  # told again: still one line
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "phone_music = false" in said[0]
    link.offer(bundle(1))
    assert link.dropped == 1 and not task.done()  # waiting to ask again, not given up
    task.cancel()


async def test_a_token_that_is_not_the_billboards_is_refused_and_the_link_goes_on(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    link = PhoneAudioLink(
        f"ws://127.0.0.1:{relay.port}/phone-audio", OPERATOR, rng=random.Random(1)
    )
    task = asyncio.create_task(link.run())
    await until(lambda: true(link.status == "refused"))
    await asyncio.sleep(0.3)
    assert not task.done() and relay.state.phone is not None and not relay.state.phone.connected
    task.cancel()


def test_phone_music_off_means_no_mixer_and_no_link() -> None:
    """By the billboard's setting (the flag's test runs the program: test_phone_e2e),
    and when the embedded relay has it off."""
    off = Show(BillboardConfig(phone_music=False), RelayConfig(), Options())
    assert off.phone is None and off.hud_figures()["phone"] == "off"
    assert off.phone not in off.scheduler.sinks
    relay_off = Show(BillboardConfig(), RelayConfig(phone_music=False), Options())
    assert relay_off.phone is None
    on = Show(BillboardConfig(), RelayConfig(), Options())
    assert on.phone is not None and on.phone in on.scheduler.sinks
    assert on.phone.mixer is None  # its samples load on its own thread, once started


async def test_a_lost_link_comes_back_by_itself_and_carries_the_newest_again(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    feed = relay.state.phone
    assert feed is not None
    link = PhoneAudioLink(
        f"ws://127.0.0.1:{relay.port}/phone-audio", BILLBOARD, rng=random.Random(1)
    )
    task = asyncio.create_task(link.run())
    await until(lambda: true(link.connected))
    # Another feed with the billboard token takes the relay's ear: ours is closed.
    other = await relay.connect("/phone-audio", headers={"Authorization": f"Bearer {BILLBOARD}"})
    await until(lambda: true(link.reconnects == 1 and link.connected))  # and takes it back
    assert other.closed or (await other.receive()).type.name in ("CLOSE", "CLOSED", "CLOSING")
    received = feed.buffer.stats.received
    link.offer(bundle(7))
    await until(lambda: true(feed.buffer.stats.received == received + 1))
    assert not task.done()
    task.cancel()
