"""The phone music's door on a real relay: the billboard's bundles in over
/phone-audio, paced out to the calls that listen."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
import pytest

from relay.phone_audio import FRAME_BYTES, encode_bundle
from tests.support.redis import RedisServer
from tests.support.relay import BILLBOARD, OPERATOR, RunningRelay, StartRelay

SHARED = b"\x01" * FRAME_BYTES
BASS = b"\x02" * FRAME_BYTES


def frame(seq: int) -> bytes:
    """Bundle `seq`: the shared mix and the bass holder's, each marked with `seq`."""
    mark = bytes((seq % 256,))
    return encode_bundle(seq, [mark + SHARED[1:], mark + BASS[1:]], {"c-bass": 1})


async def feed(relay: RunningRelay, token: str = BILLBOARD) -> aiohttp.ClientWebSocketResponse:
    return await relay.connect("/phone-audio", headers={"Authorization": f"Bearer {token}"})


async def until(condition: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def ascending(seqs: list[int], first: int, last: int) -> bool:
    """Strictly increasing marks within [first, last], ending at `last`, at least half
    of them there: frames played once each, in order."""
    return (
        len(seqs) >= (last - first + 1) // 2
        and all(a < b for a, b in itertools.pairwise(seqs))
        and first <= seqs[0]
        and seqs[-1] == last
    )


async def test_only_the_billboard_token_may_feed_the_phone_music(relay: RunningRelay) -> None:
    async with relay.session.get(f"{relay.url}/phone-audio") as response:
        assert response.status == 401
        assert "billboard token" in await response.text()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await feed(relay, OPERATOR)
    assert refused.value.status == 403


async def test_each_call_hears_its_own_mix_in_order_and_others_the_shared_one(
    relay: RunningRelay,
) -> None:
    phone = relay.state.phone
    assert phone is not None
    heard: dict[str, list[bytes | None]] = {"c-bass": [], "c-other": []}
    stops = [phone.listen(caller, heard[caller].append) for caller in heard]
    ws = await feed(relay)
    for seq in range(1, 21):
        await ws.send_bytes(frame(seq))
        await asyncio.sleep(0.02)
    await until(lambda: any(f is not None and f[0] == 20 for f in heard["c-bass"]))
    bass = [f for f in heard["c-bass"] if f is not None]
    other = [f for f in heard["c-other"] if f is not None]
    # In order, once each (a loaded machine's late pacer may drop the oldest frames).
    assert ascending([f[0] for f in bass], 1, 20) and ascending([f[0] for f in other], 1, 20)
    assert all(f[1:] == BASS[1:] for f in bass) and all(f[1:] == SHARED[1:] for f in other)
    for stop in stops:
        stop()
    health = phone.health()
    assert health["feed"] == "connected" and health["received"] == 20
    assert health["budget_ms"] == 60 and health["wait_ms_p99"] >= 0
    await ws.close()


async def test_a_bad_bundle_is_counted_and_the_music_goes_on(relay: RunningRelay) -> None:
    phone = relay.state.phone
    assert phone is not None
    heard: list[bytes | None] = []
    phone.listen("c-bass", heard.append)
    ws = await feed(relay)
    await ws.send_bytes(b"DJPA\x01\x05garbage")
    await ws.send_str("hello")
    for seq in range(1, 6):
        await ws.send_bytes(frame(seq))
    await until(lambda: sum(f is not None for f in heard) >= 5)
    assert [f[0] for f in heard if f is not None] == [1, 2, 3, 4, 5]
    async with relay.session.get(f"{relay.url}/healthz") as response:
        health = await response.json()
    assert health["phone"]["bad"] == 2
    assert not ws.closed
    await ws.close()


async def test_a_restarted_billboard_replaces_its_old_feed(relay: RunningRelay) -> None:
    phone = relay.state.phone
    assert phone is not None
    heard: list[bytes | None] = []
    phone.listen("c-bass", heard.append)
    old = await feed(relay)
    for seq in range(100, 104):
        await old.send_bytes(frame(seq))
    await until(lambda: any(f is not None for f in heard))
    new = await feed(relay)
    closed = await old.receive()
    assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 4000
    before = len(heard)
    for seq in range(1, 5):  # its numbering starts again: not taken for late frames
        await new.send_bytes(frame(seq))
    await until(lambda: [f[0] for f in heard[before:] if f is not None][-1:] == [4])
    assert phone.health()["late"] == 0
    await new.close()


async def test_with_phone_music_off_there_is_no_door(start_relay: StartRelay) -> None:
    relay = await start_relay(phone_music=False)
    assert relay.state.phone is None
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await feed(relay)
    assert refused.value.status == 404


async def test_with_several_relays_calls_on_each_hear_the_billboard_fed_to_one(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = [await start_relay(backplane=redis_server.url) for _ in range(2)]
    heard: dict[str, list[bytes | None]] = {"a": [], "b": []}
    for name, relay in (("a", a), ("b", b)):
        phone = relay.state.phone
        assert phone is not None
        await until(lambda phone=phone: phone.health()["shared"])  # type: ignore[misc]
        phone.listen("c-bass", heard[name].append)
    ws = await feed(a)
    for seq in range(1, 11):
        await ws.send_bytes(frame(seq))
        await asyncio.sleep(0.02)
    for name in heard:
        await until(lambda name=name: any(f is not None and f[0] == 10 for f in heard[name]))  # type: ignore[misc]
        assert ascending([f[0] for f in heard[name] if f is not None], 1, 10)
    assert a.state.phone is not None and a.state.phone.health()["published"] == 10
    await ws.close()
