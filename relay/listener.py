"""Where strangers first touch the relay: the listening socket and each request's entry.

`listen(app, host, port)` serves the app (python -m relay, the billboard's embedded
relay and the tests all use it) through `EdgeHandler`, aiohttp's `RequestHandler` with
what aiohttp has no option for (its `web_protocol.py`):

- every accepted socket is counted in the app's `Ledger` (a full relay or a greedy
  address is answered 503 and closed at once, before it costs anything more);
- a socket must send a complete request head within `header_timeout_s` of opening
  (slowloris), and a keep-alive socket its next one within as long of the last
  response (aiohttp's `keepalive_timeout`, which closes a socket idle in between);
- a client's WebSocket frame without a mask fails the connection with 1002
  (RFC 6455 §5.1; aiohttp's reader, shared with its client, does not check);
- a malformed request is answered 400 by aiohttp and logged by us in one line,
  rate-limited, instead of a traceback per request.

`EdgeGuard.middleware` then places each request: its client (X-Forwarded-For from a
trusted proxy), whether it holds a token (reserved connections), and its Origin.
`EdgeGuard.add_headers` puts the security headers on every response.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, cast

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from .config import RelayConfig
from .edge import (
    BAD_ORIGIN,
    BAD_REQUEST,
    HEADER_TIMEOUT,
    REFUSAL_CODES,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_FROM_ADDRESS,
    UNMASKED,
    HeadWatch,
    Ledger,
    Limits,
    bearer_token,
    client_address,
    counted_as,
    is_trusted,
    known_token,
    max_connections_for,
    origin_allowed,
    origin_of,
    parse_address,
    parse_networks,
    parse_origins,
    security_headers,
)
from .protocol import CLOSE_PROTOCOL_ERROR, MaskCheck, ws_close_frame
from .ratelimit import LogOnce

if TYPE_CHECKING:
    from .sharedlimits import SharedSockets

log = logging.getLogger("relay")

RETRY_AFTER_S: Final = 10

_MESSAGES: Final = {
    TOO_MANY_CONNECTIONS: "the relay is full; try again in a moment",
    TOO_MANY_FROM_ADDRESS: "too many connections from your address; close some and retry",
}


def _http_refusal(status: str, code: str, message: str) -> bytes:
    """A whole HTTP response written straight to a socket that never reached aiohttp."""
    body = b'{"type":"error","code":"%s","message":"%s"}' % (code.encode(), message.encode())
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Retry-After: %d\r\nConnection: close\r\n\r\n%s"
        % (status.encode(), len(body), RETRY_AFTER_S, body)
    )


_REQUEST_TIMEOUT: Final = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)


class EdgeGuard:
    """One relay's edge: its ledger of sockets, its trusted proxies, origins and tokens,
    and its refusals, each counted (`count_error`) and logged at most once a minute per
    reason and address."""

    def __init__(self, config: RelayConfig, count_error: Callable[[str], None]) -> None:
        self.config = config
        self.trusted = parse_networks(config.trusted_proxies)
        explicit = parse_origins(config.allowed_origins)
        public = origin_of(config.public_url) if config.public_url else None
        # Default: public_url's origin and the relay's own Host (checked per request).
        self.origins = explicit or frozenset({public} if public else ())
        self.own_host = not explicit
        self.tokens = (config.operator_token, config.billboard_token, config.publisher_token)
        self.ledger = Ledger(self._limits(None))
        # Refusals: once a minute per reason and address, twenty at once in all.
        self.limiter = LogOnce(every_s=60.0, burst=20)
        self._count_error = count_error
        # With a backplane: the address's sockets counted with the other relays'.
        self.shared: SharedSockets | None = None

    def _limits(self, open_files: int | None) -> Limits:
        cfg = self.config
        total = cfg.max_connections
        if open_files is not None:
            fits = max_connections_for(open_files)
            if not total:
                total = fits
            elif total > fits:
                log.warning(
                    "max_connections %d is more than %d open files allow; using %d",
                    total,
                    open_files,
                    fits,
                )
                total = fits
        return Limits(total or 1 << 20, cfg.reserved_connections, cfg.connections_per_address)

    def fit(self, open_files: int) -> None:
        """Size the total from the process's open-files limit (`max_connections = 0`),
        or keep the configured one within it."""
        self.ledger.limits = self._limits(open_files)

    def is_proxy(self, peer: str) -> bool:
        return is_trusted(parse_address(peer), self.trusted)

    def refuse(self, code: str, address: str, detail: str) -> None:
        """Count a refusal and log it, rate-limited: a flood costs one line a minute."""
        self._count_error(code)
        if self.limiter.allow((code, address), time.monotonic()):
            log.warning(
                "refused %s: %s (%s; logged once a minute per address)", address, detail, code
            )

    # -- each request --

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peer = request.remote or ""
        forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
        client = client_address(peer, forwarded, self.trusted)
        if forwarded and client == peer and _local(peer) and not self.is_proxy(peer):
            self._hint_untrusted_proxy(peer)
        if client != peer:
            request = request.clone(remote=client)  # what every handler sees as remote
        token = bearer_token(request.headers.get(hdrs.AUTHORIZATION, ""))
        holder = known_token(token or request.query.get("token"), self.tokens)
        counted = counted_as(client)
        before = self.ledger.anonymous_from(counted)
        refusal = self.ledger.identify(request.protocol, counted, holder)
        if refusal is None and self.shared is not None:
            after = self.ledger.anonymous_from(counted)
            # A new anonymous socket of this address: within what all relays allow it?
            if after > before and not await self.shared.room(counted, after):
                self.ledger.close(request.protocol)
                refusal = TOO_MANY_FROM_ADDRESS
        if refusal is not None:
            self.refuse(refusal, client, f"{request.method} {request.path[:64]}")
            response = _json_error(503, refusal, _MESSAGES[refusal])
            response.headers[hdrs.RETRY_AFTER] = str(RETRY_AFTER_S)
            response.force_close()
            return response
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and not self._origin_ok(request, origin):
            self.refuse(
                BAD_ORIGIN, client, f"{request.method} {request.path[:64]} from a page elsewhere"
            )
            return _json_error(
                403, BAD_ORIGIN, "pages of this origin may not connect or publish here"
            )
        return await handler(request)

    def _origin_ok(self, request: web.Request, origin: str) -> bool:
        """Browsers send Origin; only their WebSocket upgrades and writes are checked
        (reading a page or a file from elsewhere is harmless)."""
        upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        if not upgrade and request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        host = request.headers.get(hdrs.HOST, "")  # never request.host: no Host, a DNS lookup
        return origin_allowed(origin, host, self.origins, self.own_host)

    def _hint_untrusted_proxy(self, peer: str) -> None:
        if self.limiter.allow(("untrusted_proxy", peer), time.monotonic()):
            log.warning(
                "requests from %s carry X-Forwarded-For, but it is not in trusted_proxies: "
                "the header is ignored, and every client behind it shares its connection cap",
                peer,
            )

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: the security headers on every page, file and answer."""
        if isinstance(response, web.WebSocketResponse):
            return
        for name, value in security_headers(request.headers.get(hdrs.HOST, "")).items():
            response.headers.setdefault(name, value)

    # -- figures --

    def figures(self, errors: dict[str, int]) -> dict[str, Any]:
        ledger = self.ledger
        limits = ledger.limits
        return {
            "open": len(ledger),
            "token_holders": ledger.holders,
            "anonymous": ledger.anonymous,
            "pending": ledger.pending,
            "max": limits.total,
            "reserved": limits.reserved,
            "per_address": limits.per_address,
            "busiest_address": ledger.busiest(),
            "refused": {code: errors[code] for code in REFUSAL_CODES if code in errors},
        }


GUARD = web.AppKey("edge_guard", EdgeGuard)


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "code": code, "message": message}, status=status)


def _local(peer: str) -> bool:
    address = parse_address(peer)
    return address is not None and (address.is_loopback or address.is_private)


class _MaskedFrames:
    """aiohttp's WebSocket reader behind a `MaskCheck`: the first frame without a mask
    stops the feed and calls `on_unmasked`."""

    __slots__ = ("_check", "_failed", "_on_unmasked", "_reader")

    def __init__(self, reader: Any, on_unmasked: Callable[[], None]) -> None:
        self._reader = reader
        self._check = MaskCheck()
        self._on_unmasked = on_unmasked
        self._failed = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._failed:
            return False, b""
        if not self._check.feed(data):
            self._failed = True
            self._on_unmasked()
            return False, b""
        result: tuple[bool, bytes] = self._reader.feed_data(data)
        return result

    def feed_eof(self) -> None:
        self._reader.feed_eof()


class EdgeHandler(RequestHandler):
    """aiohttp's request handler (one per socket), counted, timed and checked; see the
    module's docstring."""

    __slots__ = ("_counted", "_deadline", "_guard", "_head", "_peer")

    def __init__(self, manager: web.Server, guard: EdgeGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._peer = "?"
        self._head = HeadWatch()
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # aiohttp times the first head with keepalive_timeout too; ours answers 408 and
        # counts it. Its own timer comes back after each response (start()).
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        guard = self._guard
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and peername:
            address = parse_address(str(peername[0]))
            self._peer = str(address) if address is not None else str(peername[0])
        refusal = guard.ledger.open(self, counted_as(self._peer), guard.is_proxy(self._peer))
        if refusal is not None:
            guard.refuse(refusal, self._peer, "connection closed at once")
            refused = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
            refused.write(_http_refusal("503 Service Unavailable", refusal, _MESSAGES[refusal]))
            refused.close()
            return
        self._counted = True
        timeout = guard.config.header_timeout_s
        self._deadline = asyncio.get_running_loop().call_later(timeout, self._head_late)

    def data_received(self, data: bytes) -> None:
        if self._deadline is not None and self._head.feed(data):
            self._deadline.cancel()
            self._deadline = None
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._counted:
            self._counted = False
            self._guard.ledger.close(self)
        super().connection_lost(exc)

    def _head_late(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        timeout = self._guard.config.header_timeout_s
        self._guard.refuse(HEADER_TIMEOUT, self._peer, f"no request head within {timeout:g} s")
        transport.write(_REQUEST_TIMEOUT)
        transport.close()

    def set_parser(self, parser: Any, data_received_cb: Callable[[], None] | None = None) -> None:
        """The upgrade to a WebSocket hands its frame reader over: check masks first."""
        masked: Any = _MaskedFrames(parser, self._unmasked)  # a reader, to aiohttp
        super().set_parser(masked, data_received_cb)

    def _unmasked(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._guard.refuse(UNMASKED, self._peer, "a WebSocket frame without a mask")
        # RFC 6455 §7.1.7: to fail the connection, send a close frame (1002) and close.
        transport.write(ws_close_frame(CLOSE_PROTOCOL_ERROR))
        transport.close()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A request aiohttp could not parse is the peer's fault: one line, no traceback
        (its text may hold the start of a 8 KB URL). Anything else is our bug."""
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            self._guard.refuse(BAD_REQUEST, self._peer, f"{type(exc).__name__} ({exc.code})")
            return
        super().log_exception(*args, **kw)


class EdgeSite(web.BaseSite):
    """A TCP site whose sockets are served by `EdgeHandler`s."""

    __slots__ = ("_factory", "_host", "_port", "_reuse_address")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        factory: Callable[[], EdgeHandler],
        reuse_address: bool | None = None,
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._factory = factory
        self._reuse_address = reuse_address

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory, self._host, self._port, reuse_address=self._reuse_address
        )


@functools.cache
def open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit (each socket is
    one; the usual soft limit of 1,024 is the whole relay's ceiling), once, saying so.
    Returns the limit now in force."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # macOS caps it below the hard limit
            log.warning("open files: cannot raise the limit of %d to %d (%s)", soft, target, exc)
            return soft
        log.info("open files: limit raised from %d to %d", soft, target)
        return target
    log.info("open files: limit %d", soft if soft != resource.RLIM_INFINITY else target)
    return soft if soft != resource.RLIM_INFINITY else target


async def listen(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float = 5.0,
    reuse_address: bool | None = None,
) -> web.AppRunner:
    """Serve `app` (made by `relay.app.create_app`) on host:port through the edge and
    return its runner (`runner.addresses` has the port when 0 was asked; `cleanup()`
    stops it). A port that cannot be bound raises `OSError`, the runner cleaned up."""
    guard = app[GUARD]
    guard.fit(open_files_limit())
    # An idle keep-alive socket holds one of its address's places: it gets as long for
    # its next head as a new socket for its first (a page's files load in a second).
    keepalive = guard.config.header_timeout_s
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=shutdown_timeout, keepalive_timeout=keepalive
    )
    await runner.setup()
    server = runner.server
    assert server is not None
    loop = asyncio.get_running_loop()

    def handler() -> EdgeHandler:
        return EdgeHandler(server, guard, loop=loop, keepalive_timeout=keepalive)

    try:
        await EdgeSite(runner, host, port, handler, reuse_address).start()
    except BaseException:
        await runner.cleanup()
        raise
    limits = guard.ledger.limits
    log.info(
        "connections: at most %d, %d of them kept for token holders, %s per address; "
        "request heads within %g s",
        limits.total,
        limits.reserved,
        limits.per_address or "no limit",
        keepalive,
    )
    return runner
