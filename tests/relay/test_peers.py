"""The relay's slow, dead and closing peers over raw sockets: a subscriber that never
reads, one that never answers a ping, one that stays overflowed, and RFC 6455 §5.5.1's
rule that no data frame follows our Close frame, whoever starts the close."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest

from tests.support.relay import RunningRelay, StartRelay, recv, send, until
from tests.support.websocket import client_frame, upgrade_request


@pytest.fixture(name="start_relay")
async def start_open_relay(start_relay: StartRelay) -> StartRelay:
    """A rehearsal relay (``open``: anyone may publish on any channel), as in
    test_relay.py: who may publish what is tested in test_trust.py."""

    async def start(**settings: Any) -> RunningRelay:
        settings.setdefault("open", True)
        return await start_relay(**settings)

    return start


async def _subscribers(relay: RunningRelay, n: int) -> bool:
    return relay.state.hub.subscription_count() == n


async def _health(relay: RunningRelay, check: Any) -> bool:
    return bool(check(await relay.healthz()))


async def _true(value: bool) -> bool:
    return value


async def _raw_websocket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made client: handshake, tiny receive buffer, then silence."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(upgrade_request())
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101")
    writer.transport.pause_reading()  # never read again
    return reader, writer


@pytest.mark.timing
async def test_a_subscriber_that_never_reads_does_not_delay_the_others(
    start_relay: StartRelay,
) -> None:
    # The readers share this process (and its event loop) with the relay: a queue of
    # 1,000 lets them fall a little behind on a loaded machine without being dropped,
    # while the stuck peer overflows it many times over.
    relay = await start_relay(queue=1000, slow_close_s=1.0, rate=0)
    # A peer that completes the handshake, subscribes, then never reads a byte.
    _reader, writer = await _raw_websocket(relay.port)
    writer.write(client_frame(b'{"type":"subscriber","id":"room","v":2}'))
    await writer.drain()
    readers = [await relay.connect() for _ in range(3)]
    for ws in readers:
        await send(ws, {"type": "subscriber", "id": "room"})
    await until(lambda: _subscribers(relay, 4))
    pub = await relay.connect()
    pad = "p" * 3000
    total = 4000  # ≈ 12 MB: more than the stuck peer's queue and kernel buffers hold

    async def collect(ws: aiohttp.ClientWebSocketResponse) -> float:
        worst = 0.0
        for _ in range(total):
            event = await recv(ws, 5)
            worst = max(worst, asyncio.get_running_loop().time() - event["t"])
        return worst

    loop = asyncio.get_running_loop()
    collecting = [asyncio.create_task(collect(ws)) for ws in readers]
    for n in range(total):
        await send(pub, {"type": "publisher", "id": "room", "data": {"t": loop.time(), "x": pad}})
        if n % 10 == 0:  # about 2,000 events (6 MB) a second
            await asyncio.sleep(0.005)
    worst = max(await asyncio.gather(*collecting))
    assert worst < 1.0, f"an event took {worst:.3f} s to reach a reading subscriber"
    # The stuck peer was sent a gap or cut off; the relay counted what it dropped.
    await until(lambda: _health(relay, lambda h: h["drops"] > 0), timeout=5)
    await until(lambda: _health(relay, lambda h: h["connections"] == 4), timeout=5)
    writer.close()


async def test_heartbeats_find_a_dead_peer_and_it_leaves_its_channels(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(heartbeat_s=0.3)
    _reader, writer = await _raw_websocket(relay.port)  # never answers a ping
    writer.write(client_frame(b'{"type":"subscriber","id":"dialjam"}'))
    await writer.drain()
    await until(lambda: _subscribers(relay, 1))
    await until(lambda: _health(relay, lambda h: h["connections"] == 0), timeout=3)
    assert relay.state.hub.subscription_count() == 0
    writer.close()


# -- RFC 6455 §5.5.1: no data frame after our Close frame --


class RawClient:
    """A hand-made WebSocket client that reads every frame the relay sends, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames: list[tuple[int, bytes]] = []  # (opcode, payload)

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upgrade_request())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        self.writer.write(client_frame(payload, opcode=opcode))

    async def read_all(self, timeout: float = 10.0) -> None:
        """Every frame until the relay ends the TCP connection (or `timeout`)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    head = await self.reader.readexactly(2)
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    return
                assert not head[1] & 0x80, "a server's frames are never masked"
                n = head[1] & 0x7F
                if n == 126:
                    n = int.from_bytes(await self.reader.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await self.reader.readexactly(8), "big")
                self.frames.append((head[0] & 0x0F, await self.reader.readexactly(n)))

    def after_close(self) -> list[int]:
        """The opcodes of the frames that came after the first Close frame."""
        opcodes = [op for op, _ in self.frames]
        assert 0x8 in opcodes, "the relay sent no Close frame"
        return opcodes[opcodes.index(0x8) + 1 :]

    def close_code(self) -> int:
        payload = next(p for op, p in self.frames if op == 0x8)
        return int.from_bytes(payload[:2], "big")


async def _flowing(relay: RunningRelay, channel: str) -> asyncio.Task[None]:
    """Events published on `channel` without pause (a few per loop iteration) until
    cancelled, from inside the relay's process, so they flow through any close."""

    async def publish() -> None:
        n = 0
        while True:
            for _ in range(4):
                relay.state.publish(channel, {"n": n, "pad": "x" * 200})
                n += 1
            await asyncio.sleep(0)

    return asyncio.create_task(publish())


@pytest.mark.parametrize("provoked_by", ["shutdown", "flood", "peer_close"])
async def test_no_data_frame_follows_the_relays_close_frame(
    start_relay: StartRelay, provoked_by: str
) -> None:
    relay = await start_relay(rate=5, burst=5)
    client = await RawClient.connect(relay.port)
    for v in (1, 2):  # a v1 and a v2 subscription: one frame per event and arrays
        client.send(b'{"type":"subscriber","id":"room%d","v":%d}' % (v, v))
    await until(lambda: _subscribers(relay, 2))
    flows = [await _flowing(relay, name) for name in ("room1", "room2")]
    reading = asyncio.create_task(client.read_all())
    await until(lambda: _true(len(client.frames) > 50))  # events are flowing
    if provoked_by == "shutdown":  # 1001 for everyone; this client never answers it
        stopping = asyncio.create_task(relay.runner.cleanup())
    elif provoked_by == "flood":  # an anonymous peer over its rate: 1008
        for _ in range(400):
            client.send(b'{"type":"ping"}')
    else:  # the peer closes first and the relay answers
        client.send((1000).to_bytes(2, "big"), opcode=0x8)
    await reading
    for flow in flows:
        flow.cancel()
    if provoked_by == "shutdown":
        await stopping
    expected = {"shutdown": 1001, "flood": 1008, "peer_close": 1000}[provoked_by]
    assert client.close_code() == expected
    assert client.after_close() == [], "data frames followed the relay's Close frame"
    client.writer.close()


async def test_a_subscriber_that_stays_overflowed_is_closed_with_1013(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(queue=10, slow_close_s=0.3)
    _reader, writer = await _raw_websocket(relay.port)  # never reads again
    writer.write(client_frame(b'{"type":"subscriber","id":"room","v":2}'))
    await writer.drain()
    await until(lambda: _subscribers(relay, 1))
    flow = await _flowing(relay, "room")
    stats = relay.state.hub.stats
    await until(lambda: _true(stats.slow_closed == 1), timeout=10)
    flow.cancel()
    assert stats.drops > 0
    # Cut off once it took no Close frame either: it leaves its channel.
    await until(lambda: _health(relay, lambda h: h["connections"] == 0), timeout=10)
    assert relay.state.hub.subscription_count() == 0
    writer.close()
