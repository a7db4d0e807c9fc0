"""The billboard's relay link against a real relay on a free port."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from billboard.relay_link import RelayLink
from tests.relay.conftest import BILLBOARD, OPERATOR, StartRelay, recv, send, start_relay, until

__all__ = ["start_relay"]  # the fixture, shared with the relay's tests


async def test_the_link_receives_digits_and_commands_and_publishes_state(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(rate=0)
    data: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    link = RelayLink(relay.ws_url, "dialjam", BILLBOARD, data.append, commands.append)
    task = asyncio.create_task(link.run())
    watcher = await relay.connect()
    await send(watcher, {"type": "subscriber", "id": "dialjam:state"})
    await until(lambda: _subscriptions(relay, 3))
    pub = await relay.connect()
    await send(
        pub, {"type": "publisher", "id": "dialjam", "data": {"event": "join", "caller": "c-1"}}
    )
    op = await relay.connect(headers={"Authorization": f"Bearer {OPERATOR}"})
    command = {"event": "command", "name": "tempo", "args": {"bpm": 90}}
    await send(op, {"type": "publisher", "id": "dialjam:control", "data": command})
    await until(lambda: _true(len(data) == 1 and len(commands) == 1))
    assert data == [{"event": "join", "caller": "c-1"}] and commands == [command]
    link.publish_update({"event": "assign", "caller": "c-1", "track": "bass", "line": 0})
    link.publish_state({"event": "state", "tempo": 90})
    assert (await recv(watcher))["event"] == "assign"
    assert await recv(watcher) == {"event": "state", "tempo": 90}
    task.cancel()


async def test_the_link_reconnects_and_resumes_without_loss(start_relay: StartRelay) -> None:
    relay = await start_relay(rate=0)
    data: list[dict[str, Any]] = []
    link = RelayLink(
        relay.ws_url, "dialjam", BILLBOARD, data.append, lambda _: None, rng=random.Random(1)
    )
    task = asyncio.create_task(link.run())
    await until(lambda: _subscriptions(relay, 2))
    pub = await relay.connect()
    for n in range(100):
        await send(pub, {"type": "publisher", "id": "dialjam", "data": {"n": n}})
        if n == 40:
            await until(lambda: _true(len(data) > 0))
            # The venue's line drops: the relay cuts every connection but the publisher's.
            for conn in list(relay.state.connections):
                if conn.subscriber.subscriptions:
                    conn.transport.abort()
        await asyncio.sleep(0.005)
    await until(lambda: _true(len(data) >= 100), timeout=10)
    assert [d["n"] for d in data] == list(range(100))
    assert link.reconnects == 1
    task.cancel()


async def test_the_link_keeps_trying_while_the_relay_is_away(start_relay: StartRelay) -> None:
    link = RelayLink("ws://127.0.0.1:9/ws", "dialjam", "", lambda _: None, lambda _: None)
    task = asyncio.create_task(link.run())
    await asyncio.sleep(1.0)
    assert link.status in ("offline", "connecting")
    assert not task.done()  # no exception, no give-up
    task.cancel()


async def _subscriptions(relay: Any, n: int) -> bool:
    return bool(relay.state.hub.subscription_count() == n)


async def _true(value: bool) -> bool:
    return value
