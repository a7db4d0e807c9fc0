"""Limits that hold across relays, on a real redis-server on a free port: per address
(relay/sharedlimits.py), proven with two `python -m relay --backplane` processes (what
one address does on relay A counts on relay B: the caller sessions it mints, its HTTP
publishes); and the channels' cap and history bytes, held in Redis
(relay/backplane_script.py), with two relays in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from relay.backplane import log_key, meta_key
from relay.channel import EVENT_OVERHEAD
from relay.sharedlimits import address_key
from tests.support.redis import RedisServer
from tests.support.relay import OPERATOR, PUBLISHER, RunningRelay, StartRelay, until
from tests.support.relays import Relays


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def mint(client: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with client.post(f"{base}/session", json={"channel": "dialjam"}) as resp:
        return resp.status, await resp.json()


async def test_an_address_over_its_sessions_on_relay_a_is_refused_on_relay_b_too(
    redis_server: RedisServer, session: aiohttp.ClientSession
) -> None:
    relays = Relays(redis_server, {"DIALJAM_SESSIONS_PER_MINUTE": "6"})  # a burst of 6
    try:
        await relays.start(2)
        a, b = relays.http(0), relays.http(1)
        statuses = [(await mint(session, a))[0] for _ in range(6)]
        assert statuses == [200] * 6
        status, body = await mint(session, a)
        assert (status, body["code"]) == (429, "rate_limited")
        # Relay B never saw this address: its own bucket is full, the shared one empty.
        status, body = await mint(session, b)
        assert (status, body["code"]) == (429, "rate_limited"), body
        assert "from your address" in body["message"]
    finally:
        await relays.stop()


async def test_an_addresses_http_publishes_are_counted_once_across_relays(
    redis_server: RedisServer, session: aiohttp.ClientSession
) -> None:
    # 2 publishes a second per address, a burst of 4; a relay on its own would allow
    # 4 here, two relays 8 between them.
    relays = Relays(redis_server, {"DIALJAM_RATE": "2", "DIALJAM_BURST": "4"})
    try:
        await relays.start(2)
        _, minted = await mint(session, relays.http(0))
        statuses = []
        for n in range(12):
            body = {"type": "publisher", "session": minted["session"]}
            body["data"] = {"event": "digit", "digit": str(n % 10)}
            async with session.post(f"{relays.http(n % 2)}/publish/dialjam", json=body) as resp:
                statuses.append(resp.status)
        assert set(statuses) == {200, 429}, statuses
        assert statuses.count(200) <= 5, statuses  # 4 in the burst, maybe 1 refilled
        async with session.get(f"{relays.http(1)}/healthz") as resp:
            limits = (await resp.json())["backplane"]["address_limits"]
        assert limits["refused"] >= 1 and limits["unanswered"] == 0
    finally:
        await relays.stop()


async def test_without_redis_each_relay_still_holds_its_own_limit(
    redis_server: RedisServer, session: aiohttp.ClientSession
) -> None:
    relays = Relays(redis_server, {"DIALJAM_SESSIONS_PER_MINUTE": "3"})
    try:
        await relays.start(2)
        a, b = relays.http(0), relays.http(1)
        assert [(await mint(session, a))[0] for _ in range(3)] == [200] * 3
        redis_server.kill()
        # Sessions need no Redis: B mints as one relay would, and stops at its own limit.
        assert [(await mint(session, b))[0] for _ in range(4)] == [200, 200, 200, 429]
        async with session.get(f"{b}/healthz") as resp:
            assert (await resp.json())["backplane"]["address_limits"]["unanswered"] == 3
    finally:
        await relays.stop()


async def test_an_addresses_sockets_are_counted_across_relays_and_given_back(
    redis_server: RedisServer, session: aiohttp.ClientSession
) -> None:
    relays = Relays(redis_server, {"DIALJAM_CONNECTIONS_PER_ADDRESS": "4"})
    try:
        await relays.start(2)
        on_a = [await session.ws_connect(relays.url(0)) for _ in range(3)]
        on_b = [await session.ws_connect(relays.url(1))]  # the fourth: within the limit
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(relays.url(1))  # B holds one; all relays hold four
        assert refused.value.status == 503
        holder = {"Authorization": f"Bearer {OPERATOR}"}  # a token holder is not counted
        async with session.get(f"{relays.http(1)}/healthz", headers=holder) as resp:
            health = await resp.json()
        assert health["backplane"]["sockets_per_address"]["refused"] == 1
        assert health["sockets"]["refused"]["too_many_from_address"] == 1
        for ws in on_a[:2]:
            await ws.close()

        async def b_takes_one() -> bool:  # once A gave back what it no longer holds
            try:
                on_b.append(await session.ws_connect(relays.url(1)))
            except aiohttp.WSServerHandshakeError:
                return False
            return True

        await until(b_takes_one, timeout=20.0)
        for ws in [*on_a[2:], *on_b]:
            await ws.close()
    finally:
        await relays.stop()


def test_redis_holds_an_address_only_as_a_keyed_hash() -> None:
    key = address_key("session", "203.0.113.7", b"k" * 32)
    assert "203" not in key and "113" not in key
    assert key.startswith("dialjam:addr:session:")
    assert key == address_key("session", "203.0.113.7", b"k" * 32)
    assert key != address_key("session", "203.0.113.8", b"k" * 32)
    assert key != address_key("session", "203.0.113.7", b"j" * 32)


# --- channels and history bytes, held in Redis (relay/backplane_script.py) ---


async def post(relay: RunningRelay, channel: str, data: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {PUBLISHER}"}
    url = f"{relay.url}/publish/{channel}"
    async with relay.session.post(url, json=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_channels_made_at_once_through_two_relays_share_one_cap(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = [await start_relay(backplane=redis_server.url, max_channels=1) for _ in range(2)]
    answers = await asyncio.gather(post(a, "room-a", {"n": 1}), post(b, "room-b", {"n": 1}))
    assert sorted(status for status, _ in answers) == [200, 503], answers
    assert {body.get("code") for _, body in answers} >= {"too_many_channels"}


async def test_a_channel_this_relay_no_longer_holds_still_counts_while_redis_keeps_it(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    settings = {"backplane": redis_server.url, "max_channels": 1, "history_seconds": 0.5}
    a, b = [await start_relay(**settings) for _ in range(2)]
    assert (await post(a, "room-a", {"n": 1}))[0] == 200

    async def b_holds_it() -> bool:
        return "room-a" in b.state.hub.channels

    async def b_let_it_go() -> bool:  # no subscriber, history aged: b's sweep frees it
        return not await b_holds_it()

    await until(b_holds_it)
    await until(b_let_it_go, timeout=10.0)
    status, body = await post(b, "room-b", {"n": 1})
    assert (status, body["code"]) == (503, "too_many_channels")
    assert (await post(a, "room-a", {"n": 2}))[0] == 200  # the one made goes on


async def redis_bytes(client: Any, name: str) -> tuple[int, int, int]:
    """(bytes the meta hash says, the stream's events' costs summed, events held)."""
    entries = await client.xrange(log_key(name))
    held = sum(int(fields[b"c"]) for _, fields in entries)
    return int(await client.hget(meta_key(name), "bytes") or 0), held, len(entries)


async def test_the_history_of_a_channel_is_bounded_in_bytes_in_redis(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a = await start_relay(backplane=redis_server.url, history_bytes=1000)
    client = aioredis.from_url(redis_server.url)  # type: ignore[no-untyped-call]
    try:
        for n in range(20):
            assert (await post(a, "room", {"n": n, "pad": "x" * 100}))[0] == 200
        said, held, events = await redis_bytes(client, "room")
        assert said == held <= 1000
        assert events == 1000 // (len('{"n":10,"pad":""}') + 100 + EVENT_OVERHEAD)
        newest = await client.xrevrange(log_key("room"), count=1)
        assert newest[0][0] == b"20-0"  # the oldest went, the newest stay
    finally:
        await client.aclose()


async def test_all_channels_history_is_bounded_in_bytes_in_redis_the_biggest_paying(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = [
        await start_relay(backplane=redis_server.url, history_bytes=5000, history_total_bytes=3000)
        for _ in range(2)
    ]
    client = aioredis.from_url(redis_server.url)  # type: ignore[no-untyped-call]
    try:
        assert (await post(a, "quiet", {"n": 0}))[0] == 200
        for n in range(12):
            assert (await post((a, b)[n % 2], "loud", {"n": n, "pad": "x" * 100}))[0] == 200
        quiet = await redis_bytes(client, "quiet")
        loud = await redis_bytes(client, "loud")
        total = int(await client.get("dialjam:total"))
        assert quiet[0] == quiet[1] and quiet[2] == 1  # untouched: it holds the least
        assert loud[0] == loud[1] and loud[2] < 12
        assert total == quiet[0] + loud[0] <= 3000
    finally:
        await client.aclose()


async def test_a_kept_channel_whose_stream_expired_counts_no_bytes_it_no_longer_holds(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a = await start_relay(backplane=redis_server.url)
    client = aioredis.from_url(redis_server.url)  # type: ignore[no-untyped-call]
    try:
        for n in range(3):
            assert (await post(a, "dialjam", {"caller_id": "c-quiet", "command": str(n)}))[0] == 200
        await client.delete(log_key("dialjam"))  # what its PEXPIRE does to a quiet channel
        status, body = await post(a, "dialjam", {"caller_id": "c-quiet", "command": "9"})
        assert (status, body["seq"]) == (200, 4)  # the same epoch goes on
        said, held, events = await redis_bytes(client, "dialjam")
        assert said == held and events == 1
        assert int(await client.get("dialjam:total")) == said
    finally:
        await client.aclose()
