"""The benchmarks' WebSocket client: a bare asyncio protocol that a single core can
drive at 200,000 deliveries a second, and the one function that reads what a relay sends.

:class:`WsClient` does the handshake, reads unmasked server frames (text, ping, close,
fragments) and writes masked client frames (RFC 6455 §5.3) with one random key per
connection, so the relay does all the unmasking work a real client would cost it.
Scripts subclass it and override :meth:`WsClient.on_text`. :func:`read_frame` is the
only place that knows the relay's two subscriber forms (the seed's bare ``data`` and
v2 envelopes, singly or in arrays; see the README's "The relay protocol" and relay/protocol.py).
It is not the contract's V2Subscriber (relay/contract/subscriber.py), which the billboard
and the rehearsal use, because it must read 200,000 frames a second on one core without
building an object per message; tests/bench/test_wsclient.py holds the two to the same
reading of v2 frames.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

HOST = "127.0.0.1"
CONNECT_CONCURRENCY = 50

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD2 = struct.Struct("!BB").pack
_HEAD4 = struct.Struct("!BBH").pack
_HEAD10 = struct.Struct("!BBQ").pack


class BenchError(Exception):
    """A run could not be measured (connection refused, handshake failed, timeout)."""


class WsClient(asyncio.Protocol):
    """A WebSocket client on a bare asyncio protocol: handshake, unmasked server frames
    in (text, ping, close, fragments), masked text frames out, write flow control."""

    def __init__(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed = False
        self.handshaking = True
        self.key = base64.b64encode(os.urandom(16))
        self.mask = os.urandom(4)
        self._mask_ints: dict[int, int] = {}
        self._buf = bytearray()
        self._need = 0
        self._frag: list[bytes] | None = None
        self._resume: asyncio.Future[None] | None = None
        self.paused = False
        self.reads = 0
        self.errors: list[str] = []

    # -- connection --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        transport = self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=256 * 1024)
        transport.write(
            b"GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (HOST.encode(), self.port, self.key)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(BenchError(f"connection lost during handshake: {exc}"))
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark."""
        if self.paused and not self.closed:
            self._resume = asyncio.get_running_loop().create_future()
            await self._resume

    def _handshake(self, data: bytes) -> bytes | None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self._buf[:end]).decode("latin-1")
        rest = bytes(self._buf[end + 4 :])
        self._buf.clear()
        self.handshaking = False
        lines = head.split("\r\n")
        expected = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        if " 101 " not in lines[0] + " " or headers.get("sec-websocket-accept") != expected:
            self.opened.set_exception(BenchError(f"WebSocket handshake refused: {lines[0]!r}"))
            assert self.transport is not None
            self.transport.close()
            return None
        self.opened.set_result(None)
        return rest

    # -- frames in --

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        if self.handshaking:
            rest = self._handshake(data)
            if not rest:
                return
            data = rest
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return
            data = bytes(self._buf)
            self._buf.clear()
        now = time.monotonic_ns()
        n = len(data)
        pos = 0
        while True:
            left = n - pos
            if left < 2:
                self._need = 2
                break
            b1 = data[pos + 1]
            size = b1 & 0x7F
            if size < 126:
                start = pos + 2
            elif size == 126:
                if left < 4:
                    self._need = 4
                    break
                size = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if left < 10:
                    self._need = 10
                    break
                size = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + size
            if end > n:
                self._need = end - pos
                break
            b0 = data[pos]
            try:
                if b0 == 0x81 and not b1 & 0x80:
                    self.on_text(data[start:end], now)
                else:
                    self._other_frame(b0, b1, data[start:end], now)
            except Exception as exc:  # a frame we cannot read: report it, read on
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {exc} in {data[start:end][:120]!r}")
            pos = end
        if pos < n:
            self._buf += data[pos:]

    def _other_frame(self, b0: int, b1: int, payload: bytes, now: int) -> None:
        if b1 & 0x80:
            raise BenchError("the server sent a masked frame")
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if opcode == 0x9:  # ping
            self.send(payload, 0x8A)
        elif opcode == 0x8:  # close: answer and let the server end the connection
            if not self.closed:
                self.send(payload[:2], 0x88)
            self.closed = True
        elif opcode == 0x1:  # the first fragment of a text message
            self._frag = [payload]
        elif opcode == 0x0 and self._frag is not None:
            self._frag.append(payload)
            if fin:
                whole = b"".join(self._frag)
                self._frag = None
                self.on_text(whole, now)

    def on_text(self, payload: bytes, now: int) -> None:
        """A text message arrived (`now` is when its bytes reached this process)."""

    # -- frames out --

    def send(self, payload: bytes, first_byte: int = 0x81) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.frame(payload, first_byte))

    def frame(self, payload: bytes, first_byte: int = 0x81) -> bytes:
        """One masked client frame (RFC 6455 §5.3); the key is random per connection,
        so the relay does all the unmasking work a real client would cost it."""
        n = len(payload)
        if n < 126:
            head = _HEAD2(first_byte, 0x80 | n)
        elif n < 65536:
            head = _HEAD4(first_byte, 0xFE, n)
        else:
            head = _HEAD10(first_byte, 0xFF, n)
        mask = self._mask_ints.get(n)
        if mask is None:
            mask = int.from_bytes((self.mask * (n // 4 + 1))[:n], "little")
            self._mask_ints[n] = mask
        masked = (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")
        return head + self.mask + masked

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.send(struct.pack("!H", 1000), 0x88)
            self.transport.close()


def read_frame(obj: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split one decoded frame from a relay into event envelopes and control frames
    (``subscribed``, ``gap``, ``error``, acks).

    A v2 subscriber gets ``{"type":"event","id":CH,"seq":N,"ts":MS,"data":{...}}`` or an
    array of such envelopes, returned as they are; a plain (seed) subscriber gets the
    bare ``data`` object, which has no ``type``, returned as ``{"data": obj}``. Either
    way an event's payload is ``envelope["data"]``."""
    if obj.__class__ is list:
        events: list[dict[str, Any]] = []
        controls: list[dict[str, Any]] = []
        for env in obj:
            (controls if env.get("data") is None else events).append(env)
        return events, controls
    if "type" not in obj:
        return [{"data": obj}], []
    return ([obj], []) if obj.get("data") is not None else ([], [obj])


C = TypeVar("C", bound=WsClient)


async def connect_all(port: int, count: int, make: Callable[[], C], timeout: float) -> list[C]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> C:
        async with gate:
            _, proto = await loop.create_connection(make, HOST, port)
            await proto.opened
            return proto

    try:
        return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout)
    except TimeoutError:
        raise BenchError(f"could not open {count} connections in {timeout:g} s") from None
