"""WebSocket connections: the aiohttp adapter, and the only code that writes to sockets.

- `Connection`: one relay client. Frames in are parsed (`relay.protocol`) and fed to
  the fan-out (`relay.fanout`); what its outbox holds goes out in one transport write
  per round (`Connection.flush`), or, while the kernel takes no more bytes, from its
  own writer task (`Connection.run_writer`), so one slow phone never stalls the others.
- `Flusher`: runs the fan-out's rounds of writes on the event loop, once per loop
  iteration that queued something (a big round held as `FanOut.hold` says).
- `Registry`: every open WebSocket of the relay, the gateways' streams included (a
  Twilio media stream registers itself), counted for /healthz and closed on one
  shutdown path: `Registry.close_all`, 1001 Going Away for everyone.
- `websocket`: the handler of ``/ws`` (and of an upgrade at ``/``).

RFC 6455 §5.5.1: "After sending a Close frame, the application MUST NOT send any more
data frames." aiohttp marks a `WebSocketResponse` closed (``ws.closed``) before it
writes its Close frame, whoever starts the close (our `Connection.close`, the peer's
Close answered, a message over the cap, a missed heartbeat); `Connection.flush` and the
writer task write nothing once it is, and both run on the one event loop, so no data
frame can follow the Close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from functools import partial
from typing import Final, Protocol, cast

from aiohttp import WSMsgType, web

from . import protocol
from .admission import Publisher
from .fanout import FanOut
from .protocol import CALLERS_SUFFIX, ProtocolError
from .ratelimit import LogOnce, RefusalWindow, TokenBucket
from .sessions import Session, SessionError
from .state import PUBLISHER_ONLY, STATE, RelayState, bearer, publisher_cost

log = logging.getLogger("relay")

# Bytes the kernel has not yet taken from a connection's transport before we stop
# writing and let the events wait (and coalesce) in its outbox; the writer task writes
# again below LOW_WATER (asyncio's own default marks for a transport's write buffer).
HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
DRAIN_POLL_S: Final = 0.005
# A connection with more than this many frames refused for its rate within the window
# is closed (1008): a flood, not a burst (a peer sending 1,000 frames a second is closed
# within half a second; one at twice `rate` never is).
FLOOD_REFUSALS: Final = 250
FLOOD_WINDOW_S: Final = 5.0
# Frames handled from one connection before giving the event loop a turn.
YIELD_EVERY: Final = 256
# How long a peer gets to answer our Close frame before its socket is cut.
CLOSE_TIMEOUT_S: Final = 2.0


async def close_websocket(
    ws: web.WebSocketResponse,
    transport: asyncio.BaseTransport,
    code: int,
    reason: str,
    timeout: float = CLOSE_TIMEOUT_S,
) -> None:
    """Close `ws` with `code`; a peer that will not take the Close frame is cut off."""
    try:
        await asyncio.wait_for(ws.close(code=code, message=reason.encode()[:120]), timeout)
    except (TimeoutError, ConnectionError):
        # No answer in time. If our Close frame (and all before it) left for the
        # kernel, end with a FIN: a reset would make the peer's kernel drop what it
        # has not read yet, the Close frame included, on a busy machine. A peer that
        # reads nothing leaves bytes unsent, and close() would wait for them forever:
        # that one is cut off.
        stream = cast(asyncio.Transport, transport)
        if stream.get_write_buffer_size() == 0:
            stream.close()
        else:
            stream.abort()


class Socket(Protocol):
    """What the registry holds of an open WebSocket."""

    kind: str  # "relay" for the relay's clients, else the gateway's name
    name: str

    async def close(self, code: int, reason: str) -> None: ...


class Stream:
    """A gateway's WebSocket (a Twilio media stream): read by its gateway, closed by the
    registry."""

    __slots__ = ("kind", "name", "transport", "ws")

    def __init__(self, kind: str, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.kind = kind
        self.name = f"{kind} stream ({request.remote})"
        self.ws = ws
        transport = request.transport
        assert transport is not None
        self.transport = transport

    async def close(self, code: int, reason: str) -> None:
        await close_websocket(self.ws, self.transport, code, reason)


class Registry:
    """Every open WebSocket of one relay: the relay's clients and the gateways' streams."""

    def __init__(self) -> None:
        self._open: set[Socket] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, sock: Socket) -> None:
        self._open.add(sock)

    def discard(self, sock: Socket) -> None:
        self._open.discard(sock)

    def open_stream(self, kind: str, ws: web.WebSocketResponse, request: web.Request) -> Stream:
        """Register a gateway's prepared `ws`; `discard` it when its gateway is done."""
        stream = Stream(kind, ws, request)
        self._open.add(stream)
        return stream

    def connections(self) -> list[Connection]:
        """The relay's own clients."""
        return [cast(Connection, s) for s in self._open if s.kind == Connection.kind]

    def counts(self) -> dict[str, int]:
        """Open WebSockets by kind."""
        counts: dict[str, int] = {}
        for sock in self._open:
            counts[sock.kind] = counts.get(sock.kind, 0) + 1
        return counts

    async def close_all(self, code: int, reason: str) -> None:
        """Close every open WebSocket with `code` at once (shutdown: 1001 Going Away)."""
        if self._open:
            await asyncio.gather(
                *(sock.close(code, reason) for sock in list(self._open)), return_exceptions=True
            )


class Flusher:
    """Runs the fan-out's rounds of writes: woken by the fan-out when an outbox turns
    dirty, it writes in the next loop iteration (a big round when `FanOut.hold` allows)."""

    def __init__(self, fanout: FanOut) -> None:
        self.fanout = fanout

    def wake(self) -> None:
        asyncio.get_running_loop().call_soon(self.run)

    def run(self) -> None:
        wait = self.fanout.hold(time.monotonic())
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self.run)
            return
        self.flush_now()

    def flush_now(self) -> None:
        """Write every dirty outbox at once."""
        now = time.monotonic()
        for outbox in self.fanout.take_dirty():
            try:
                outbox.owner.flush(now)
            except Exception:  # our bug: keep the others going, show the traceback
                log.exception("flush failed for connection %s", outbox.name)


class Connection:
    """One relay client: its roles, rate buckets and outbox; frames in, writes out."""

    kind = "relay"
    _counter = 0

    def __init__(self, state: RelayState, ws: web.WebSocketResponse, request: web.Request) -> None:
        Connection._counter += 1
        self.name = f"#{Connection._counter} ({request.remote})"
        self.client = request.remote or "?"  # as the edge placed it (a trusted proxy's client)
        self.state = state
        self.ws = ws
        cfg = state.config
        self.roles = state.roles_for(bearer(request) or request.query.get("token"))
        self.session: Session | None = None
        now = time.monotonic()
        self.bucket = TokenBucket(cfg.rate, cfg.burst, now)
        self.publisher_bucket = TokenBucket(cfg.publisher_rate, cfg.publisher_burst, now)
        self.flood = RefusalWindow(FLOOD_REFUSALS, FLOOD_WINDOW_S)
        self.last_rate_error = -1.0
        self.logged = LogOnce()  # each refusal code once per connection
        transport = request.transport
        assert transport is not None
        self.transport = transport
        self.outbox = state.hub.open(self.name, self)
        self.busy = False  # the transport is backed up: `run_writer` writes for now
        self._wake = asyncio.Event()
        self.closing: asyncio.Task[None] | None = None

    # -- frames in --

    def throttle(self, frame: bytes) -> float:
        """Seconds to wait before handling `frame`: a publisher over publisher_rate is
        read more slowly (its socket fills and TCP holds the sender back), never
        refused, so a real IVR's burst is late, not lost, and a flood costs nothing."""
        if self.roles != PUBLISHER_ONLY:
            return 0.0
        wait = self.publisher_bucket.delay(time.monotonic(), publisher_cost(len(frame)))
        if wait > 0:
            state = self.state
            state.throttled += 1
            if state.may_log("throttled", self.client):
                log.info(
                    "holding back %s: over publisher_rate (%g frames or KiB a second); "
                    "logged once a minute per address",
                    self.name,
                    state.config.publisher_rate,
                )
        return wait

    def on_text(self, frame: bytes) -> None:
        state = self.state
        state.frames_in += 1
        try:
            self._handle(frame)
        except ProtocolError as exc:
            self.refuse(exc)
        except Exception:  # our bug: answer, show the traceback, keep serving
            log.exception("internal error handling a frame from %s", self.name)
            self.refuse(ProtocolError("internal", "the relay failed on this frame"))

    def _handle(self, frame: bytes) -> None:
        cfg = self.state.config
        privileged = bool(self.roles)
        now = time.monotonic()
        if not privileged and not self.bucket.allow(now):
            if self.flood.refused(now):
                raise ProtocolError(
                    "rate_limited", "flooding: connection closed", protocol.CLOSE_POLICY
                )
            raise ProtocolError(
                "rate_limited", f"more than {cfg.rate:g} frames a second; frame dropped"
            )
        oversize = len(frame) > cfg.max_frame
        request = protocol.parse_frame(frame)
        if request.token is not None:
            granted = self.state.roles_for(request.token)
            if not granted:
                raise ProtocolError("unauthorised", "token not recognised; frame refused")
            self.roles |= granted
        if oversize and not self.roles:
            raise ProtocolError(
                "too_large", f"frame of {len(frame)} bytes is over the {cfg.max_frame}-byte limit"
            )
        state = self.state
        outbox = self.outbox
        if isinstance(request, protocol.Publish):
            try:
                self._publish(request)
            except ProtocolError as exc:
                exc.ref = request.ref  # the publisher knows which frame was refused
                raise
        elif isinstance(request, protocol.Subscribe):
            caller, all_callers = self._audience(request)
            state.hub.subscribe(
                outbox,
                request.channel,
                request.v == 2,
                now,
                request.since,
                request.epoch,
                bool(self.roles) or cfg.open,
                caller,
                all_callers,
            )
        elif isinstance(request, protocol.Unsubscribe):
            state.hub.unsubscribe(outbox, request.channel)
            outbox.send_control(protocol.dumps({"type": "unsubscribed", "id": request.channel}))
        else:
            outbox.send_control(b'{"type":"pong"}')

    def _publish(self, request: protocol.Publish) -> None:
        state = self.state
        cfg = state.config
        outbox = self.outbox
        if request.session is not None:
            self._bind(request.session, request.channel)
        session = self.session
        who = Publisher(
            frozenset(self.roles),
            session.caller if session and session.channel == request.channel else None,
            cfg.open,
        )
        data = state.publish_for(request.channel, request.data, who)
        # Only a token holder opens a channel (anyone could squat max_channels); the
        # open mode of a rehearsal lets anyone, as in 2010.
        create = bool(self.roles) or cfg.open
        if state.backplane is not None:  # acknowledged once Redis holds it
            fut = state.publish_shared(request.channel, data, outbox, create)
            fut.add_done_callback(
                partial(
                    self._published, request.channel, request.ack, request.ref, request.short_ack
                )
            )
        else:
            ch = state.publish(request.channel, data, origin=outbox, create=create)
            if request.ack:
                outbox.send_control(
                    protocol.encode_ack(
                        ch.name, ch.seq, ch.epoch, request.ref, short=request.short_ack
                    )
                )
        if who.caller is not None:
            state.caller_said(who.caller, request.channel, data.get("event"))

    def _published(
        self,
        channel: str,
        ack: bool,
        ref: int | None,
        short: bool,
        fut: asyncio.Future[tuple[int, str]],
    ) -> None:
        """A publish through the backplane settled: the ack, or an error frame saying
        the event was not published (never silence)."""
        if fut.cancelled() or self.outbox.closed:
            return
        exc = fut.exception()
        if exc is not None:
            refusal = (
                exc
                if isinstance(exc, ProtocolError)
                else ProtocolError("internal", "the relay failed on this frame")
            )
            refusal.ref = ref
            self.refuse(refusal)
        elif ack:
            seq, epoch = fut.result()
            self.outbox.send_control(protocol.encode_ack(channel, seq, epoch, ref, short=short))

    def _audience(self, request: protocol.Subscribe) -> tuple[str | None, bool]:
        """Whose news a subscription to ``NAME:callers`` hears: (its keypad's caller,
        False), or (None, True) for the billboard's and the operator's tokens (they see
        every caller on ``NAME:state`` already). Anyone else hears only the digest."""
        channel = request.channel
        if not channel.endswith(CALLERS_SUFFIX):
            return None, False
        if self.roles & {"operator", "billboard"}:
            return None, True
        installation = channel.removesuffix(CALLERS_SUFFIX)
        if request.session is not None:
            self._bind(request.session, installation)
        session = self.session
        return (session.caller if session and session.channel == installation else None), False

    def _bind(self, token: str, channel: str) -> None:
        """Bind this connection to the caller of a keypad's session: from then on it
        speaks for that caller only (one connection, one caller)."""
        state = self.state
        if state.sessions is None or channel not in state.public_channels:
            raise ProtocolError("bad_session", f"no caller sessions on {channel}")
        try:
            session = state.sessions.check(token, channel, state.wall())
        except SessionError as exc:
            raise ProtocolError(exc.code, exc.message) from None
        if self.session is None:
            self.session = session
            state.caller_opened((session.caller, channel))
        elif (self.session.caller, self.session.channel) != (session.caller, channel):
            raise ProtocolError("bad_session", "a connection speaks for one caller only")
        else:
            self.session = session  # renewed: the later expiry

    def gone(self) -> None:
        """The connection closed: a keypad's caller may have left."""
        if self.session is not None:
            self.state.caller_closed((self.session.caller, self.session.channel))
            self.session = None

    def refuse(self, exc: ProtocolError) -> None:
        """Answer the peer's mistake, log it once per connection, and go on (or close
        where the README's table says so)."""
        state = self.state
        state.count_error(exc.code)
        if self.logged.allow(exc.code) and state.may_log(exc.code, self.client):
            log.info(
                "refused a frame from %s: %s (%s; logged once a minute per address)",
                self.name,
                exc.code,
                exc.message,
            )
        if exc.code == "rate_limited" and exc.close is None:
            # One error a second is enough to tell a flooding peer.
            now = time.monotonic()
            if now - self.last_rate_error < 1.0:
                return
            self.last_rate_error = now
        self.outbox.send_control(protocol.encode_error(exc.code, exc.message, exc.ref))
        if exc.close is not None:
            self.close_soon(exc.close, exc.message)

    # -- writes out --

    def _closing(self) -> bool:
        """No more frames may go out: our Close frame is written (or about to be) or
        the transport is going."""
        return self.ws.closed or self.transport.is_closing()

    def flush(self, now: float) -> None:
        """Write everything pending in one transport write, unless the transport is
        backed up (then the writer task takes over)."""
        outbox = self.outbox
        if outbox.closed or self.busy:
            return
        transport = self.transport
        if self.ws.closed or transport.is_closing():  # see the module's docstring
            outbox.discard()
            return
        if transport.get_write_buffer_size() > HIGH_WATER:
            self._backed_up()
            return
        data = outbox.data_to_send(now)
        if data:
            transport.write(data)
        if transport.get_write_buffer_size() > HIGH_WATER:
            self._backed_up()

    def _backed_up(self) -> None:
        self.busy = True
        self._wake.set()

    async def run_writer(self) -> None:
        """The connection's own writer: takes over while its transport is backed up, so
        the publisher and every other connection go on."""
        outbox = self.outbox
        transport = self.transport
        while not outbox.closed:
            await self._wake.wait()
            self._wake.clear()
            while self.busy and not outbox.closed:
                if self._closing():
                    self.busy = False
                    outbox.discard()
                    break
                if transport.get_write_buffer_size() > LOW_WATER:
                    if outbox.stuck(time.monotonic()):
                        self.state.hub.stats.slow_closed += 1
                        log.warning("subscriber %s stayed overflowed; closing it", self.name)
                        self.busy = False
                        self.close_slow()
                        return
                    await asyncio.sleep(DRAIN_POLL_S)
                    continue
                data = outbox.data_to_send(time.monotonic())
                if data:
                    transport.write(data)
                if transport.get_write_buffer_size() <= HIGH_WATER and not outbox.items:
                    self.busy = False

    # -- closing --

    def close_slow(self) -> None:
        self.close_soon(protocol.CLOSE_TRY_AGAIN, "slow consumer: too far behind")

    def close_soon(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = asyncio.get_running_loop().create_task(self.close(code, reason))

    async def close(self, code: int, reason: str) -> None:
        """Close with `code`; a peer that will not take the close frame is cut off."""
        # Let queued replies (the error that explains the close) go first.
        self.state.flusher.flush_now()
        await close_websocket(self.ws, self.transport, code, reason)

    def stop(self) -> None:
        """The socket is done: leave every channel, wake the writer to end."""
        self.state.hub.close(self.outbox)
        self._wake.set()


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """A relay client's WebSocket: read its frames until it closes, then let it go."""
    state = request.app[STATE]
    cfg = state.config
    ws = web.WebSocketResponse(
        heartbeat=cfg.heartbeat_s,
        # Hard cap: beyond it aiohttp closes with 1009 (it refuses a message of exactly
        # max_msg_size, so one more lets token_max_frame itself through).
        max_msg_size=cfg.token_max_frame + 1,
        compress=False,  # permessage-deflate off: small frames, CPU for fan-out
        decode_text=False,  # orjson reads bytes and checks UTF-8 itself
    )
    if state.closing:
        raise web.HTTPServiceUnavailable(text="relay is shutting down")
    await ws.prepare(request)
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Connection(state, ws, request)
    state.sockets.add(conn)
    writer = asyncio.get_running_loop().create_task(conn.run_writer())
    too_big = False
    try:
        handled = 0
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                wait = conn.throttle(msg.data)
                if wait > 0:
                    await asyncio.sleep(wait)
                conn.on_text(msg.data)
                handled += 1
                if handled % YIELD_EVERY == 0:
                    # A burst already buffered is read without suspending; let the
                    # fan-out flush (and other peers run) between slices of it.
                    await asyncio.sleep(0)
            elif msg.type is WSMsgType.BINARY:
                conn.refuse(
                    ProtocolError("binary", "binary frames are not accepted; send JSON text")
                )
            elif msg.type is WSMsgType.ERROR:
                too_big = too_big or getattr(msg.data, "code", None) == protocol.CLOSE_TOO_BIG
        # aiohttp reports the 1009 as an ERROR message; close_code is then the peer's echo.
        if too_big or ws.close_code == protocol.CLOSE_TOO_BIG:
            state.count_error("too_large")
            if state.may_log("too_large", conn.client):
                log.info(
                    "closed %s: frame over the %d-byte hard cap", conn.name, cfg.token_max_frame
                )
    finally:
        conn.stop()
        state.sockets.discard(conn)
        conn.gone()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    return ws
