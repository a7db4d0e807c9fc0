"""Listening to what a gateway publishes: a plain subscriber on a relay under test,
and proof that nothing reached it (a marker published after is the next thing heard).
Shared by the tests of every gateway."""

from __future__ import annotations

import aiohttp

from tests.support.relay import PUBLISHER, RunningRelay, recv, send, until


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
