"""The proof of the shared channels with real processes: a redis-server on a free port
(append-only, synced on every write) and three `python -m relay --backplane` processes.
Subscribers are the contract's V2Subscriber behind a socket that reconnects to the
next relay, as the billboard's link and the crowd do behind one address."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from relay.contract.subscriber import Ack, Gap, Received, RelayError, V2Subscriber, publish_frame
from tests.services import redis_server
from tests.support.redis import RedisServer
from tests.support.relay import ANSWER_S, PUBLISHER
from tests.support.relays import Relays


@pytest.fixture
async def durable_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = redis_server(tmp_path, durable=True)
    yield server
    server.stop()


@pytest.fixture
async def relays(durable_redis: RedisServer) -> AsyncIterator[Relays]:
    relays = Relays(durable_redis)
    yield relays
    await relays.stop()


class Follower:
    """A v2 subscriber of the installation's channel that reconnects, through `urls`
    in turn, resuming where it was; it records every event's seq and every lost gap."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.core = V2Subscriber(["dialjam"], orjson.loads)
        self.seqs: list[int] = []
        self.gaps: list[Gap] = []
        self.connects = 0
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                url = self.urls[min(self.connects, len(self.urls) - 1)]
                self.connects += 1
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.ws_connect(url) as ws:
                        for frame in self.core.subscribe_frames():
                            await ws.send_str(orjson.dumps(frame).decode())
                        async for msg in ws:
                            for m in self.core.receive_data(msg.data):
                                if isinstance(m, Received) and m.seq is not None:
                                    self.seqs.append(m.seq)
                                elif isinstance(m, Gap) and m.lost:
                                    self.gaps.append(m)
                                self.ready.set()
                await asyncio.sleep(0.1)


async def publish_one(ws: aiohttp.ClientWebSocketResponse, n: int) -> Ack | RelayError:
    data = {"caller_id": "4155551212", "command": str(n % 10)}
    await ws.send_str(orjson.dumps(publish_frame("dialjam", data, ack=True)).decode())
    msg = await ws.receive(ANSWER_S)
    (answer,) = V2Subscriber([]).receive_data(msg.data)
    assert isinstance(answer, Ack | RelayError), answer
    return answer


async def wait_until_seen(followers: list[Follower], seqs: set[int]) -> None:
    deadline = asyncio.get_running_loop().time() + 6 * ANSWER_S
    while any(not seqs <= set(f.seqs) for f in followers):
        assert asyncio.get_running_loop().time() < deadline, "events never arrived"
        await asyncio.sleep(0.05)


async def test_three_relays_deliver_every_event_once_in_order_and_survive_losing_one(
    relays: Relays,
) -> None:
    await relays.start(3)
    # Two subscribers on relay 1 and two on relay 2; relay 1's move to relay 2 when it dies.
    followers = [Follower([relays.url(1), relays.url(2)]) for _ in range(2)]
    followers += [Follower([relays.url(2)]) for _ in range(2)]
    tasks = [asyncio.create_task(f.run()) for f in followers]
    try:
        await asyncio.wait_for(asyncio.gather(*(f.ready.wait() for f in followers)), ANSWER_S)
        acked: set[int] = set()
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {PUBLISHER}"}
            async with session.ws_connect(relays.url(0), headers=headers) as pub:
                for n in range(300):
                    if n == 100:
                        await relays.kill(1)  # kill -9 mid-show
                    answer = await publish_one(pub, n)
                    assert isinstance(answer, Ack) and answer.seq is not None, answer
                    acked.add(answer.seq)
                    await asyncio.sleep(0.002)
        assert acked == set(range(1, 301))
        await wait_until_seen(followers, acked)
        for f in followers:
            assert f.seqs == sorted(acked), "each event exactly once, in order"
            assert not f.gaps
        assert [f.connects for f in followers[:2]] == [2, 2]  # they did move
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_when_redis_restarts_publishing_resumes_and_nothing_acknowledged_is_lost(
    relays: Relays, durable_redis: RedisServer
) -> None:
    await relays.start(2)
    followers = [Follower([relays.url(1)])]
    tasks = [asyncio.create_task(f.run()) for f in followers]
    acked: set[int] = set()
    errors: list[str] = []
    try:
        await asyncio.wait_for(followers[0].ready.wait(), ANSWER_S)
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {PUBLISHER}"}
            async with session.ws_connect(relays.url(0), headers=headers) as pub:
                n = 0
                while n < 150 or len(acked) < 100:
                    if n == 50:
                        durable_redis.kill()
                    if n == 80:
                        durable_redis.start()  # the same port and append-only file
                    answer = await publish_one(pub, n)  # every one answered: ack or error
                    if isinstance(answer, Ack) and answer.seq is not None:
                        acked.add(answer.seq)
                    else:
                        assert isinstance(answer, RelayError)
                        errors.append(answer.code)
                    n += 1
                    await asyncio.sleep(0.01)
                    assert n < 3000, "publishing never resumed"
        assert errors and set(errors) == {"backplane_unavailable"}
        assert len(acked) + len(errors) == n
        await wait_until_seen(followers, acked)
        seqs = followers[0].seqs
        assert seqs == sorted(set(seqs)), "exactly once, in order"
        assert acked <= set(seqs) and max(acked) == max(seqs)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
