"""A plain ARI client of the fake Asterisk, for its tests: the events socket, a call
that has entered the app, the next event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from relay.rehearsal.fake_ari import FakeAri
from tests.relay.gateways.ari_calls import NUMBER, PASSWORD, USER


@asynccontextmanager
async def events(
    http: aiohttp.ClientSession, app: str = "dialjam"
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    params = {"app": app, "api_key": f"{USER}:{PASSWORD}"}
    async with http.ws_connect("/ari/events", params=params) as ws:
        yield ws


@asynccontextmanager
async def a_call(
    fake: FakeAri, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, str]]:
    """A client holding the app, and a call that has entered it (its StasisStart read)."""
    async with events(http) as ws:
        await fake.wait_client()
        channel_id = await fake.call(NUMBER)
        assert (await next_event(ws))["type"] == "StasisStart"
        yield ws, channel_id


async def next_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    event: dict[str, Any] = orjson.loads(msg.data)
    return event
