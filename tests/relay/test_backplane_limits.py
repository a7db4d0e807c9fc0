"""Per-address limits across relays (relay/sharedlimits.py): a real redis-server on a
free port and two `python -m relay --backplane` processes. What one address does on
relay A counts on relay B: the caller sessions it mints, its HTTP publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from relay.sharedlimits import address_key
from tests.support.redis import RedisServer
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


def test_redis_holds_an_address_only_as_a_keyed_hash() -> None:
    key = address_key("session", "203.0.113.7", b"k" * 32)
    assert "203" not in key and "113" not in key
    assert key.startswith("dialjam:addr:session:")
    assert key == address_key("session", "203.0.113.7", b"k" * 32)
    assert key != address_key("session", "203.0.113.8", b"k" * 32)
    assert key != address_key("session", "203.0.113.7", b"j" * 32)
