"""A relay under test and the clients that talk to it: the tokens its fixtures set, a
running relay's handle, and reading, sending and waiting on real WebSocket clients.
The fixtures that start relays (``start_relay``, ``relay``) are in tests/conftest.py."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from relay.app import STATE, RelayState

OPERATOR = "operator-secret-token"
BILLBOARD = "billboard-secret-token"
PUBLISHER = "publisher-secret-token"  # a seed publisher's (a Tropo script, an IVR)

# How long a relay on this machine may take to answer, or a condition to come true:
# milliseconds when the machine is idle, seconds when other work keeps both cores
# busy. Only a test that fails waits this long; one proving that nothing comes passes
# its own short timeout.
ANSWER_S = 10.0


@dataclasses.dataclass
class RunningRelay:
    app: web.Application
    runner: web.AppRunner
    port: int
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def state(self) -> RelayState:
        return self.app[STATE]

    async def connect(self, path: str = "/ws", **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        return await self.session.ws_connect(f"ws://127.0.0.1:{self.port}{path}", **kwargs)

    async def publisher(self, token: str = PUBLISHER) -> aiohttp.ClientWebSocketResponse:
        """A connection holding a role's token (default: the publisher token)."""
        return await self.connect(headers={"Authorization": f"Bearer {token}"})

    async def caller_session(self, channel: str = "dialjam") -> dict[str, Any]:
        """A keypad's caller session, as keypad.js asks for one."""
        async with self.session.post(f"{self.url}/session", json={"channel": channel}) as resp:
            assert resp.status == 200, await resp.text()
            answer: dict[str, Any] = await resp.json()
            return answer

    async def healthz(self) -> dict[str, Any]:
        async with self.session.get(f"{self.url}/healthz") as resp:
            assert resp.status == 200
            result: dict[str, Any] = await resp.json()
            return result


StartRelay = Callable[..., Awaitable[RunningRelay]]


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = ANSWER_S) -> Any:
    """The next JSON frame (an object, or a coalesced array)."""
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg!r}"
    return orjson.loads(msg.data)


class Inbox:
    """A v2 client's messages, one at a time, whether they came alone or coalesced."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []

    async def next(self, timeout: float = ANSWER_S) -> dict[str, Any]:
        while not self.pending:
            frame = await recv(self.ws, timeout)
            self.pending.extend(frame if isinstance(frame, list) else [frame])
        return self.pending.pop(0)

    async def events(self, n: int, timeout: float = ANSWER_S) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < n:
            msg = await self.next(max(0.01, deadline - asyncio.get_running_loop().time()))
            out.append(msg)
        return out


async def send(ws: aiohttp.ClientWebSocketResponse, obj: Any) -> None:
    await ws.send_str(orjson.dumps(obj).decode())


async def until(check: Callable[[], Awaitable[bool]], timeout: float = ANSWER_S) -> None:
    """Wait until `check()` holds (polled), or fail."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
