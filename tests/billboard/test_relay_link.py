"""The billboard's relay link against a real relay on a free port."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from billboard.relay_link import RelayLink
from tests.support.relay import BILLBOARD, OPERATOR, StartRelay, recv, send, until


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
    pub = await relay.publisher()
    await send(
        pub, {"type": "publisher", "id": "dialjam", "data": {"event": "join", "caller": "c-1"}}
    )
    op = await relay.connect(headers={"Authorization": f"Bearer {OPERATOR}"})
    command = {"event": "command", "name": "tempo", "args": {"bpm": 90}}
    await send(op, {"type": "publisher", "id": "dialjam:control", "data": command})
    await until(lambda: _true(len(data) == 1 and len(commands) == 1))
    # The relay's door passes the contract's shape only: every field, canonical.
    join = {"event": "join", "caller": "c-1", "source": "web", "display": None, "nick": None}
    assert data == [join] and commands == [command]
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
    pub = await relay.publisher()
    for n in range(100):
        digit = {"event": "digit", "caller": f"c-n{n}", "digit": "5"}
        await send(pub, {"type": "publisher", "id": "dialjam", "data": digit})
        if n == 40:
            await until(lambda: _true(len(data) > 0))
            # The venue's line drops: the relay cuts every connection but the publisher's.
            for conn in list(relay.state.connections):
                if conn.outbox.subscriptions:
                    conn.transport.abort()
        await asyncio.sleep(0.005)
    await until(lambda: _true(len(data) >= 100), timeout=10)
    assert [d["caller"] for d in data] == [f"c-n{n}" for n in range(100)]
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


async def test_a_failure_handling_one_event_never_ends_the_link(start_relay: StartRelay) -> None:
    relay = await start_relay(rate=0)
    data: list[dict[str, Any]] = []

    def on_data(item: dict[str, Any]) -> None:
        if item["caller"] == "c-poison":
            raise TypeError("unhashable type: 'dict'")  # as the 44-byte publish once did
        data.append(item)

    link = RelayLink(relay.ws_url, "dialjam", BILLBOARD, on_data, lambda _: None)
    task = asyncio.create_task(link.run())
    await until(lambda: _subscriptions(relay, 2))
    pub = await relay.publisher()
    for caller in ("c-poison", "c-after"):
        leave = {"event": "leave", "caller": caller, "reason": "hangup"}
        await send(pub, {"type": "publisher", "id": "dialjam", "data": leave})
    await until(lambda: _true(len(data) == 1))
    assert data[0]["caller"] == "c-after" and link.bad_frames == 1
    assert link.status == "connected" and not task.done()
    task.cancel()
