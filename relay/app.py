"""The relay's aiohttp application: WebSocket hub, HTTP publish, health, metrics, web/.

A thin adapter around `channels.Hub` and `protocol`: it reads frames, feeds them to
the hub and closes connections. Every background task is owned by the app and
cancelled on the way out; every open WebSocket is closed with 1001 Going Away.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from . import protocol
from .admission import Publisher, admit
from .channels import Hub, HubLimits, Subscriber
from .config import AriConfig, RelayConfig, TwilioConfig, fill_tokens, pseudonym_key
from .contract.privacy import pseudonym
from .listener import GUARD, EdgeGuard, listen
from .metrics import make_registry
from .protocol import ProtocolError
from .ratelimit import BucketsByKey, RefusalWindow, TokenBucket
from .sessions import Session, SessionError, Sessions, derive_key

log = logging.getLogger("relay")

# A connection with more than this many frames refused for its rate within the window
# is closed (1008): a flood, not a burst (a peer sending 1,000 frames a second is closed
# within half a second; one at twice `rate` never is).
FLOOD_REFUSALS = 250
FLOOD_WINDOW_S = 5.0
# Frames handled from one connection before giving the event loop a turn.
YIELD_EVERY = 256
# Who is held to `publisher_rate`: a seed publisher's token and nothing more (the
# operator's console and the billboard are the installation's own).
PUBLISHER_ONLY = frozenset({"publisher"})


@dataclass
class RelayState:
    """Everything one relay holds, reachable from the app (no module globals)."""

    config: RelayConfig
    hub: Hub
    started: float = field(default_factory=time.monotonic)
    connections: set[Connection] = field(default_factory=set)
    frames_in: int = 0
    throttled: int = 0  # publishers' frames held back for publisher_rate
    sessions_minted: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    events_per_s: float = 0.0
    _rate_samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=6))
    http_buckets: BucketsByKey | None = None
    publisher_buckets: BucketsByKey | None = None  # HTTP publishes of publishers, by address
    closing: bool = False
    # Gateways that run a client of their own (ARI) add their status to /healthz.
    gateway_health: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    edge: EdgeGuard | None = None  # sockets, caps and origins (relay/listener.py)
    # The installation's public channels: joins, digits and leaves, read at the door.
    public_channels: frozenset[str] = frozenset()
    sessions: Sessions | None = None
    pseudonym_key: bytes = b""
    session_buckets: BucketsByKey | None = None  # new sessions, by address
    caller_buckets: BucketsByKey | None = None  # events, by caller (across connections)
    # Open connections per keypad caller: the last one gone (and not back within
    # session_grace_s) means the caller left.
    live_callers: dict[tuple[str, str], int] = field(default_factory=dict)
    wall: Callable[[], float] = time.time

    def pseudonymise(self, number: str) -> str:
        return pseudonym(number, self.pseudonym_key)

    def publish_for(self, channel: str, data: dict[str, Any], who: Publisher) -> dict[str, Any]:
        """What `who` may put on `channel` (the admission rules), or ProtocolError; a
        caller's events are also held to the per-caller rate."""
        admitted = admit(channel, data, who, self.public_channels, self.pseudonymise)
        caller = admitted.get("caller")
        buckets = self.caller_buckets
        if (
            channel in self.public_channels
            and isinstance(caller, str)
            and buckets is not None
            and not buckets.allow(caller, time.monotonic())
        ):
            raise ProtocolError("rate_limited", "this caller sends too fast; event dropped")
        return admitted

    def caller_opened(self, key: tuple[str, str]) -> None:
        self.live_callers[key] = self.live_callers.get(key, 0) + 1

    def caller_closed(self, key: tuple[str, str]) -> None:
        left = self.live_callers.get(key, 1) - 1
        if left > 0:
            self.live_callers[key] = left
            return
        self.live_callers[key] = 0
        with contextlib.suppress(RuntimeError):  # no loop: the relay is going away
            asyncio.get_running_loop().call_later(
                self.config.session_grace_s, self._leave_if_gone, key
            )

    def _leave_if_gone(self, key: tuple[str, str]) -> None:
        """A keypad gone for session_grace_s leaves its place (on a track or in line)."""
        if self.live_callers.get(key) != 0 or self.closing:
            return
        del self.live_callers[key]
        caller, channel = key
        try:
            self.hub.publish(channel, {"event": "leave", "caller": caller, "reason": "closed"})
        except ProtocolError as exc:
            self.count_error(exc.code)

    def billboards(self) -> int:
        """Billboard connections subscribed to the installation's channel."""
        ch = self.hub.channels.get(self.config.channel)
        if ch is None:
            return 0
        return sum(
            1
            for sub in ch.subscriptions
            if isinstance(conn := sub.subscriber.owner, Connection) and "billboard" in conn.roles
        )

    def roles_for(self, token: str | None) -> set[str]:
        """The roles a token grants, compared in constant time; never logged."""
        roles: set[str] = set()
        if not token:
            return roles
        given = token.encode()
        if hmac.compare_digest(given, self.config.operator_token.encode()):
            roles.add("operator")
        if hmac.compare_digest(given, self.config.billboard_token.encode()):
            roles.add("billboard")
        publisher = self.config.publisher_token.encode()
        if publisher and hmac.compare_digest(given, publisher):
            roles.add("publisher")
        return roles

    def count_error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def may_log(self, code: str, address: str) -> bool:
        """Whether a refusal of `code` from `address` may be logged: through the edge's
        limiter (once a minute per reason and address, within a budget for all), so a
        peer that reconnects after each close cannot fill the log a line per socket."""
        edge = self.edge
        return edge is None or edge.limiter.allow((code, address), time.monotonic())

    def sample_rate(self) -> None:
        now = time.monotonic()
        self._rate_samples.append((now, self.hub.stats.published))
        t0, n0 = self._rate_samples[0]
        self.events_per_s = (self.hub.stats.published - n0) / (now - t0) if now > t0 else 0.0


STATE = web.AppKey("state", RelayState)
METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


def publisher_cost(size: int) -> float:
    """What a publisher's frame of `size` bytes takes from its bucket: one, or one per
    KiB (`publisher_rate` bounds the bytes the relay must read, not only the frames)."""
    return max(1.0, size / 1024)


def bearer(request: web.Request) -> str | None:
    value = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Connection:
    """One WebSocket peer: its roles, rate bucket, and outbox."""

    _counter = 0

    def __init__(self, state: RelayState, ws: web.WebSocketResponse, request: web.Request):
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
        self.logged: set[str] = set()
        transport = request.transport
        assert transport is not None
        self.transport = transport
        self.subscriber = state.hub.attach(transport, self.close_slow, self.name)
        self.subscriber.owner = self
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
        hub = self.state.hub
        sub = self.subscriber
        if isinstance(request, protocol.Publish):
            if request.session is not None:
                self._bind(request.session, request.channel)
            session = self.session
            who = Publisher(
                frozenset(self.roles),
                session.caller if session and session.channel == request.channel else None,
                cfg.open,
            )
            data = self.state.publish_for(request.channel, request.data, who)
            # Only a token holder opens a channel (anyone could squat max_channels); the
            # open mode of a rehearsal lets anyone, as in 2010.
            create = bool(self.roles) or cfg.open
            ch = hub.publish(request.channel, data, origin=sub, create=create)
            if request.ack:
                sub.send_control(
                    protocol.dumps({"type": "ack", "id": ch.name, "seq": ch.seq, "epoch": ch.epoch})
                )
        elif isinstance(request, protocol.Subscribe):
            hub.subscribe(
                sub,
                request.channel,
                request.v == 2,
                request.since,
                request.epoch,
                bool(self.roles) or cfg.open,
            )
        elif isinstance(request, protocol.Unsubscribe):
            hub.unsubscribe(sub, request.channel)
            sub.send_control(protocol.dumps({"type": "unsubscribed", "id": request.channel}))
        else:
            sub.send_control(b'{"type":"pong"}')

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
        if exc.code not in self.logged:
            self.logged.add(exc.code)
            if state.may_log(exc.code, self.client):
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
        self.subscriber.send_control(protocol.encode_error(exc.code, exc.message))
        if exc.close is not None:
            self.close_soon(exc.close, exc.message)

    # -- closing --

    def close_slow(self) -> None:
        self.close_soon(protocol.CLOSE_TRY_AGAIN, "slow consumer: too far behind")

    def close_soon(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = asyncio.get_running_loop().create_task(self.close(code, reason))

    async def close(self, code: int, reason: str, timeout: float = 2.0) -> None:
        """Close with `code`; a peer that will not take the close frame is cut off."""
        # Let queued replies (the error that explains the close) go first.
        self.state.hub.flush_now()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), timeout)
        except (TimeoutError, ConnectionError):
            # A peer that reads nothing never takes the close frame; a transport with
            # unsent bytes would wait for it forever on close(), so cut it off.
            self.transport.abort()


async def websocket(request: web.Request) -> web.WebSocketResponse:
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
    state.connections.add(conn)
    writer = asyncio.get_running_loop().create_task(conn.subscriber.run_writer())
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
        state.hub.detach(conn.subscriber)
        state.connections.discard(conn)
        conn.gone()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    return ws


async def root(request: web.Request) -> web.StreamResponse:
    """The 2010 clients connect to `/`: an upgrade is the relay, a GET the keypad."""
    if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
        return await websocket(request)
    return page(request.app[STATE].config, "keypad")


def page(cfg: RelayConfig, name: str) -> web.StreamResponse:
    web_dir = Path(cfg.web_dir)
    for candidate in (web_dir / f"{name}.html", web_dir / "index.html"):
        if candidate.is_file():
            return web.FileResponse(candidate, headers={"Cache-Control": "no-cache"})
    raise web.HTTPNotFound(text=f"{name} page not installed")


async def named_page(request: web.Request) -> web.StreamResponse:
    return page(request.app[STATE].config, request.match_info["page"])


async def static(request: web.Request) -> web.StreamResponse:
    web_dir = Path(request.app[STATE].config.web_dir).resolve()
    rel = request.match_info["path"]
    try:
        target = (web_dir / rel).resolve()
        target.relative_to(web_dir)  # never outside web/
        if target.is_dir():
            target = target / "index.html"
        found = target.is_file()
    except (ValueError, OSError):  # OSError: ENAMETOOLONG for a long URL, never a 500
        found = False
    if not found:
        raise web.HTTPNotFound()
    # Revalidate every time: a phone must not keep last night's keypad after an update.
    return web.FileResponse(target, headers={"Cache-Control": "no-cache"})


def http_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "code": code, "message": message}, status=status)


async def http_publish(request: web.Request) -> web.Response:
    """POST /publish/{channel}: the body is the event's `data` object (or a whole
    publisher frame); returns the seq like an ack."""
    state = request.app[STATE]
    cfg = state.config
    channel = request.match_info["channel"]
    roles = state.roles_for(bearer(request))
    if bearer(request) and not roles:
        state.count_error("unauthorised")
        return http_error(401, "unauthorised", "token not recognised")
    if not protocol.valid_channel(channel):
        state.count_error("bad_id")
        return http_error(400, "bad_id", "channel must be 1–64 characters of A-Z a-z 0-9 _ . : -")
    buckets = state.http_buckets
    remote, now = request.remote or "?", time.monotonic()
    if not roles and buckets and not buckets.allow(remote, now):
        state.count_error("rate_limited")
        return http_error(429, "rate_limited", f"more than {cfg.rate:g} publishes a second")
    limit = cfg.token_max_frame if roles else cfg.max_frame
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        state.count_error("too_large")
        return http_error(413, "too_large", f"body over the {limit}-byte limit")
    publishers = state.publisher_buckets
    cost = publisher_cost(len(body))
    if roles == PUBLISHER_ONLY and publishers and not publishers.allow(remote, now, cost):
        state.count_error("rate_limited")
        return http_error(
            429, "rate_limited", f"more than {cfg.publisher_rate:g} publishes (or KiB) a second"
        )
    try:
        obj = protocol.decode_json(body)
        if not isinstance(obj, dict):
            raise ProtocolError("not_object", "the body must be a JSON object")
        if obj.get("type") == "publisher" and "data" in obj:
            obj = dict(obj, id=channel)
        else:
            obj = {"type": "publisher", "id": channel, "data": obj}
        req = protocol.parse_object(obj)
        assert isinstance(req, protocol.Publish)
        caller = None
        if req.session is not None:
            if state.sessions is None or channel not in state.public_channels:
                raise ProtocolError("bad_session", f"no caller sessions on {channel}")
            try:
                caller = state.sessions.check(req.session, channel, state.wall()).caller
            except SessionError as exc:
                raise ProtocolError(exc.code, exc.message) from None
        who = Publisher(frozenset(roles), caller, cfg.open)
        admitted = state.publish_for(channel, req.data, who)
        ch = state.hub.publish(channel, admitted, create=bool(roles) or cfg.open)
    except ProtocolError as exc:
        state.count_error(exc.code)
        status = {
            "unauthorised": 401,
            "bad_session": 401,
            "session_expired": 401,
            "rate_limited": 429,
            "unknown_channel": 404,
            "too_many_channels": 503,
        }.get(exc.code, 400)
        return http_error(status, exc.code, exc.message)
    return web.json_response({"type": "ack", "id": channel, "seq": ch.seq, "epoch": ch.epoch})


async def new_session(request: web.Request) -> web.Response:
    """POST /session: a keypad's caller session for ``channel`` (JSON body or query);
    ``{"renew": OLD}`` keeps the caller of a valid or recently expired session."""
    state = request.app[STATE]
    cfg = state.config
    sessions, buckets = state.sessions, state.session_buckets
    assert sessions is not None and buckets is not None
    if not buckets.allow(request.remote or "?", time.monotonic()):
        state.count_error("rate_limited")
        return http_error(
            429, "rate_limited", f"more than {cfg.sessions_per_minute} new sessions a minute here"
        )
    body = await request.content.read(1025)
    try:
        obj = protocol.decode_json(body) if body.strip() else {}
    except ProtocolError as exc:
        state.count_error(exc.code)
        return http_error(400, exc.code, exc.message)
    if not isinstance(obj, dict) or len(body) > 1024:
        state.count_error("bad_data")
        return http_error(400, "bad_data", 'the body must be a small JSON object {"channel": …}')
    channel = obj.get("channel", request.query.get("channel", cfg.channel))
    if not isinstance(channel, str) or channel not in state.public_channels:
        state.count_error("unknown_channel")
        return http_error(404, "unknown_channel", "no installation plays on that channel here")
    now = state.wall()
    try:
        if "renew" in obj:
            session = sessions.renew(obj["renew"], channel, now)
        else:
            session = sessions.mint(channel, now)
    except SessionError as exc:
        state.count_error(exc.code)
        return http_error(401, exc.code, exc.message)
    state.sessions_minted += 1
    return web.json_response(
        {
            "type": "session",
            "session": session.token,
            "caller": session.caller,
            "channel": channel,
            "expires": session.expires,
            "ttl_s": sessions.ttl_s,
        },
        headers={"Cache-Control": "no-store"},
    )


def health(state: RelayState) -> dict[str, Any]:
    hub = state.hub
    active = sum(1 for ch in hub.channels.values() if ch.subscriptions)
    billboards = state.billboards()
    status = "shutting_down" if state.closing else "ok" if billboards else "degraded"
    return {
        "status": status,
        # "degraded" while no billboard listens: callers' keys reach nobody.
        "billboard": {"subscribed": billboards},
        "sessions_minted": state.sessions_minted,
        "throttled": state.throttled,
        "callers_online": sum(1 for n in state.live_callers.values() if n),
        "uptime_s": round(time.monotonic() - state.started, 3),
        "channels": active,
        "channels_held": len(hub.channels),
        "subscribers": hub.subscription_count(),
        "connections": len(state.connections),
        "events_per_s": round(state.events_per_s, 2),
        "published": hub.stats.published,
        "delivered": hub.stats.delivered,
        "drops": hub.stats.drops,
        "queued": sum(hub.queued()),
        "history_bytes": hub.history_bytes,
        "history_dropped": {
            "channel_bytes": hub.stats.history_dropped_channel,
            "total_bytes": hub.stats.history_dropped_total,
        },
        "errors": dict(state.errors),
        **({"sockets": state.edge.figures(state.errors)} if state.edge else {}),
        **{name: status() for name, status in state.gateway_health.items()},
    }


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(health(request.app[STATE]))


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Once a second: expire history, free empty channels, sample events/s."""
    state = app[STATE]

    async def loop() -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                state.hub.sweep()
                state.sample_rate()
            except Exception:
                log.exception("housekeeping failed")

    task = asyncio.get_running_loop().create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def close_all(app: web.Application) -> None:
    """On shutdown every client is told 1001 Going Away."""
    state = app[STATE]
    state.closing = True
    conns = list(state.connections)
    if conns:
        await asyncio.gather(
            *(c.close(protocol.CLOSE_GOING_AWAY, "relay shutting down") for c in conns),
            return_exceptions=True,
        )


def create_app(
    config: RelayConfig, twilio: TwilioConfig | None = None, ari: AriConfig | None = None
) -> web.Application:
    """The relay as an aiohttp application (embeddable: the billboard runs it too);
    with `twilio`, the Twilio gateway's webhook and stream are mounted too; with `ari`,
    an Asterisk ARI client runs with the app."""
    config, made_up = fill_tokens(config)
    if made_up:
        log.info("made up for this relay only: %s (relay.config.fill_tokens)", ", ".join(made_up))
    # The installation's channels (and the gateways', when elsewhere) always exist.
    pinned = protocol.installation_channels(config.channel).union(
        *(protocol.installation_channels(t.channel_for(config)) for t in (twilio, ari) if t)
    )
    hub = Hub(
        HubLimits(
            queue=config.queue,
            history_events=config.history_events,
            history_seconds=config.history_seconds,
            slow_close_s=config.slow_close_s,
            max_channels=config.max_channels,
            history_bytes=config.history_bytes,
            history_total_bytes=config.history_total_bytes,
        ),
        pinned=pinned,
    )
    state = RelayState(config=config, hub=hub)
    if config.rate > 0:
        state.http_buckets = BucketsByKey(config.rate, config.burst)
    if config.publisher_rate > 0:
        state.publisher_buckets = BucketsByKey(config.publisher_rate, config.publisher_burst)
    secret = config.session_key or config.operator_token
    state.sessions = Sessions(derive_key(secret, "caller sessions"), config.session_ttl_s)
    state.pseudonym_key = pseudonym_key(config)
    per_minute = config.sessions_per_minute
    state.session_buckets = BucketsByKey(per_minute / 60.0, per_minute)
    state.caller_buckets = BucketsByKey(config.caller_rate, 2 * config.caller_rate)
    state.public_channels = frozenset(
        {config.channel}
        | {gateway.channel_for(config) for gateway in (twilio, ari) if gateway is not None}
    )
    state.edge = EdgeGuard(config, state.count_error)
    app = web.Application(
        client_max_size=config.token_max_frame + 1024, middlewares=[state.edge.middleware]
    )
    app[STATE] = state
    app[GUARD] = state.edge
    app.on_response_prepare.append(state.edge.add_headers)
    app[METRICS_REGISTRY] = make_registry(state)
    app.cleanup_ctx.append(housekeeping)
    app.on_shutdown.append(close_all)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/", root)
    app.router.add_post("/publish/{channel}", http_publish)
    app.router.add_post("/session", new_session)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    # --- telephony gateways (issue 5); before the catch-all GET of web/ ---
    if twilio is not None:
        from .gateways.twilio import TwilioGateway  # only a relay that has it loads it

        TwilioGateway(twilio, config, state.hub.publish, state.count_error).mount(app)
    if ari is not None:
        from .gateways.ari import AriGateway

        gateway = AriGateway(ari, config, state.hub.publish, state.count_error)
        gateway.mount(app)
        state.gateway_health["ari"] = gateway.health
    # --- end of gateways ---
    app.router.add_get("/{page:keypad|console|wall}", named_page)
    app.router.add_get("/{path:.+}", static)
    return app


__all__ = ["STATE", "Connection", "RelayState", "Subscriber", "create_app", "health", "listen"]
