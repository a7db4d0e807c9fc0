"""Listening to what a gateway publishes: a plain subscriber on a relay under test,
and proof that nothing reached it (a marker published after is the next thing heard).
Shared by the tests of every gateway."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support.relay import BILLBOARD, OPERATOR, PUBLISHER, RunningRelay, recv, send, until


async def subscribe(
    relay: RunningRelay, channel: str = "dialjam"
) -> aiohttp.ClientWebSocketResponse:
    """A seed-style subscriber: it receives exactly each event's data."""
    before = relay.state.hub.subscription_count()
    ws = await relay.connect()
    await send(ws, {"type": "subscriber", "id": channel})

    async def subscribed() -> bool:
        return relay.state.hub.subscription_count() > before

    await until(subscribed)
    return ws


async def nothing_published(relay: RunningRelay, sub: aiohttp.ClientWebSocketResponse) -> None:
    """Nothing reached `sub` before a marker published now."""
    marker = {"event": "leave", "caller": "c-marker", "reason": "hangup"}
    headers = {"Authorization": f"Bearer {PUBLISHER}"}
    async with relay.session.post(
        f"{relay.url}/publish/dialjam", json=marker, headers=headers
    ) as resp:
        assert resp.status == 200
    assert await recv(sub) == marker


def kick(caller: str, ban_s: float = 60) -> dict[str, Any]:
    """The billboard's word that the operator kicked `caller` (relay/contract/callers.py)."""
    return {"event": "leave", "caller": caller, "reason": "kicked", "ban_s": ban_s}


async def billboard_says(relay: RunningRelay, channel: str, data: dict[str, Any]) -> None:
    """The billboard publishes `data` on `channel`'s ``:callers``."""
    ws = await relay.publisher(BILLBOARD)
    await send(ws, {"type": "publisher", "id": f"{channel}:callers", "data": data})
    await ws.close()


END_CALLS: dict[str, Any] = {"event": "command", "name": "end_calls", "args": {}}


async def operator_says(relay: RunningRelay, channel: str, data: dict[str, Any]) -> None:
    """The console publishes `data` on `channel`'s ``:control`` (the operator's token)."""
    ws = await relay.publisher(OPERATOR)
    await send(ws, {"type": "publisher", "id": f"{channel}:control", "data": data})
    await ws.close()
