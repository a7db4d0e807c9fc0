"""The relay's edge, free of I/O: who a peer is, how many connections it may hold, and
what a browser may do. `relay/listener.py` is the adapter that feeds it.

- The client's address: `X-Forwarded-For` is believed only from `trusted_proxies`, and
  the client is its rightmost hop that is not one of them (the hops to the left of it
  were written by the client itself).
- `Ledger` counts the open sockets: all of them against `max_connections`, those whose
  requests hold no token against `max_connections - reserved_connections` and, per
  address (an IPv6 client's /64), against `connections_per_address`.
- `HeadWatch` tells when a request head is complete (the WebSocket frames' own checks
  are `relay.protocol`'s, with the rest of RFC 6455's framing).
- Origins, security headers and rate-limited logging of refusals.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Why a connection or request was refused: the code counted in `errors`.
TOO_MANY_CONNECTIONS: Final = "too_many_connections"
TOO_MANY_FROM_ADDRESS: Final = "too_many_from_address"
HEADER_TIMEOUT: Final = "header_timeout"
BAD_REQUEST: Final = "bad_request"
UNMASKED: Final = "unmasked"
BAD_ORIGIN: Final = "bad_origin"
REFUSAL_CODES: Final = (
    TOO_MANY_CONNECTIONS,
    TOO_MANY_FROM_ADDRESS,
    HEADER_TIMEOUT,
    BAD_REQUEST,
    UNMASKED,
    BAD_ORIGIN,
)


# --- addresses -------------------------------------------------------------------------


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks ("127.0.0.1, 10.0.0.0/8, ::1"); raises
    `ValueError` naming the entry that is neither."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address as proxies write it ("203.0.113.5", "203.0.113.5:4711", "[2001:db8::1]:80",
    "2001:db8::1"); an IPv4 address mapped into IPv6 is given as IPv4. None when it is
    not an address (nginx may write "unknown")."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port; bare IPv6 has several colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address | None, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The client behind `peer`: when `peer` is a trusted proxy, the rightmost hop of
    its X-Forwarded-For headers that is not a trusted proxy (every hop to its right was
    written by a proxy we trust; to its left, by whoever connected to it). A peer we do
    not trust is the client, whatever it claims."""
    peer_address = parse_address(peer)
    if not is_trusted(peer_address, trusted):
        return str(peer_address) if peer_address is not None else peer
    client = peer_address
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break  # not written by a proxy we trust: stop at the last good hop
        client = address
        if not is_trusted(address, trusted):
            break
    return str(client)


def counted_as(address: str) -> str:
    """What a client's connections are counted under: its IPv4 address, or its IPv6
    /64 (one subscriber's network: a phone or a home gets a whole /64, RFC 6177, so an
    address each would let one of them take every place)."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and not parsed.is_loopback:
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


# --- connection accounting ---------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """`total`: sockets at once; `reserved`: of those, kept for token holders;
    `per_address`: sockets of one address not known to hold a token (0: no limit)."""

    total: int
    reserved: int
    per_address: int

    @property
    def anonymous(self) -> int:
        return max(1, self.total - self.reserved)


# File descriptors kept for what is not a client socket: listeners, log files, the
# web/ files being sent, Redis, MIDI and sound in the billboard.
FD_MARGIN_MAX: Final = 256


def max_connections_for(open_files: int) -> int:
    """The sockets a process allowed `open_files` descriptors can hold, after a margin
    (an eighth of them, at most 256) for everything else it opens."""
    return max(1, open_files - min(FD_MARGIN_MAX, open_files // 8))


_PENDING, _ANONYMOUS, _HOLDER = range(3)


@dataclass
class _Socket:
    peer: str | None  # a direct peer's address; None for a trusted proxy's socket
    client: str = ""  # whom its requests come from, once it is admitted anonymous
    state: int = _PENDING


class Ledger:
    """The open sockets, counted as `listener.py` accepts them (`open`), their requests
    say who sent them (`identify`) and they close (`close`); keyed by any hashable (the
    listener uses its protocol object). Methods return the refusal code, or None when
    the socket or request may go on.

    A socket is pending until its first request: counted in the total and, when it
    comes straight from its peer, against that address with room for `reserved` more
    than `per_address` (a token holder looks like anyone until its head arrives). A
    request with a known token makes its socket a holder's, counted in the total only;
    any other is admitted while the anonymous pool and its client's share have room."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._sockets: dict[object, _Socket] = {}
        self._open_by_peer: Counter[str] = Counter()  # pending or anonymous, direct peers
        self._by_client: Counter[str] = Counter()  # admitted anonymous, by client
        # Told (client, its admitted anonymous sockets left) when one of them goes: the
        # relays' shared count (relay/sharedlimits.py) gives back what it no longer needs.
        self.on_release: Callable[[str, int], None] | None = None
        self.holders = 0
        self.anonymous = 0

    def __len__(self) -> int:
        return len(self._sockets)

    @property
    def pending(self) -> int:
        """Sockets that have not sent a request yet (or were refused one)."""
        return len(self._sockets) - self.holders - self.anonymous

    def anonymous_from(self, client: str) -> int:
        """The admitted anonymous sockets of `client`."""
        return self._by_client[client]

    def busiest(self) -> int:
        """The most sockets one address holds, token holders aside."""
        return max(
            max(self._open_by_peer.values(), default=0), max(self._by_client.values(), default=0)
        )

    def open(self, key: object, peer: str, proxied: bool) -> str | None:
        """A socket was accepted from `peer` (a trusted proxy when `proxied`)."""
        limits = self.limits
        if len(self._sockets) >= limits.total:
            return TOO_MANY_CONNECTIONS
        if proxied:
            self._sockets[key] = _Socket(None)
            return None
        if limits.per_address and self._open_by_peer[peer] >= limits.per_address + limits.reserved:
            return TOO_MANY_FROM_ADDRESS
        self._sockets[key] = _Socket(peer)
        self._open_by_peer[peer] += 1
        return None

    def identify(self, key: object, client: str, holder: bool) -> str | None:
        """A request arrived on the socket `key` from `client`; `holder` when it showed
        a known token."""
        sock = self._sockets.get(key)
        if sock is None or sock.state == _HOLDER:
            return None
        limits = self.limits
        if holder:
            self._release(sock)
            sock.state = _HOLDER
            self.holders += 1
            return None
        if sock.state == _ANONYMOUS:
            if sock.client == client:
                return None
            # A proxy's idle upstream socket now carries another client's request.
            if limits.per_address and self._by_client[client] >= limits.per_address:
                return TOO_MANY_FROM_ADDRESS
            self._uncount_client(sock.client)
            sock.client = client
            self._by_client[client] += 1
            return None
        if self.anonymous >= limits.anonymous:
            return TOO_MANY_CONNECTIONS
        if limits.per_address and self._by_client[client] >= limits.per_address:
            return TOO_MANY_FROM_ADDRESS
        sock.state = _ANONYMOUS
        sock.client = client
        self._by_client[client] += 1
        self.anonymous += 1
        return None

    def close(self, key: object) -> None:
        sock = self._sockets.pop(key, None)
        if sock is None:
            return
        if sock.state == _HOLDER:
            self.holders -= 1
        else:
            self._release(sock)

    def _release(self, sock: _Socket) -> None:
        """Stop counting a pending or anonymous socket against its addresses."""
        if sock.state == _ANONYMOUS:
            self._uncount_client(sock.client)
            self.anonymous -= 1
        if sock.peer is not None:
            _uncount(self._open_by_peer, sock.peer)
            sock.peer = None

    def _uncount_client(self, client: str) -> None:
        _uncount(self._by_client, client)
        if self.on_release is not None:
            self.on_release(client, self._by_client[client])


def _uncount(counter: Counter[str], key: str) -> None:
    left = counter[key] - 1
    if left > 0:
        counter[key] = left
    else:
        del counter[key]


def known_token(token: str | None, tokens: Iterable[str]) -> bool:
    """True when `token` is one of `tokens` (empty ones never match); every candidate
    is compared in constant time."""
    if not token:
        return False
    given = token.encode()
    found = False
    for candidate in tokens:
        if candidate and hmac.compare_digest(given, candidate.encode()):
            found = True
    return found


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header value."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# --- the request head ----------------------------------------------------------------


class HeadWatch:
    """Bytes of a connection in; True once the first request head is complete (an empty
    line ends it, RFC 9112 §2.1; a bare LF is taken too, as lenient parsers do)."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> bool:
        window = self._tail + data
        if b"\n\r\n" in window or b"\n\n" in window:
            return True
        self._tail = window[-2:]
        return False


# --- browsers: origins and security headers ---------------------------------------------


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _origin_key(scheme: str, host: str, port: int | None) -> str:
    default = _DEFAULT_PORTS.get(scheme)
    shown = f"[{host}]" if ":" in host else host
    return shown if port in (None, default) else f"{shown}:{port}"


def origin_of(url: str) -> str | None:
    """ "scheme://host[:port]" of an http(s) URL, lower-case, without a default port;
    None when `url` is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{scheme}://{_origin_key(scheme, parts.hostname.lower(), port)}"


def parse_origins(text: str) -> frozenset[str]:
    """Comma-separated origins ("https://jam.example.org, http://10.0.0.2:8080"); raises
    `ValueError` naming an entry that is not scheme://host[:port]."""
    origins: set[str] = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        origin = origin_of(entry)
        if origin is None or urlsplit(entry).path not in ("", "/"):
            raise ValueError(f"{entry!r} is not an origin like https://jam.example.org")
        origins.add(origin)
    return frozenset(origins)


def same_host(origin: str, host: str) -> bool:
    """True when the Origin header `origin` names the host the request was sent to (its
    Host header), whatever the scheme: a TLS proxy in front changes it."""
    try:
        page = urlsplit(origin.strip())
        target = urlsplit(f"//{host.strip()}")
        page_port = page.port or _DEFAULT_PORTS.get(page.scheme.lower())
        target_port = target.port
    except ValueError:
        return False
    if not page.hostname or page.hostname != target.hostname:
        return False
    return target_port is None or target_port == page_port


def origin_allowed(origin: str, host: str, allowed: frozenset[str], own_host: bool) -> bool:
    """Whether a browser page of `origin` may open a WebSocket or publish: one of
    `allowed`, or (with `own_host`) a page of the host the request was sent to."""
    return origin_of(origin) in allowed or (own_host and same_host(origin, host))


_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

# The pages (web/*.html) load ES modules from /js and style sheets from /css, with no
# inline script or style element; scripts set styles through element.style (CSSOM),
# which style-src does not govern. The favicon is "data:,".
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{ws}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_STATIC_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def security_headers(host: str) -> dict[str, str]:
    """Headers for every page and file the relay serves. `host` (the request's Host) is
    added to connect-src as ws:// and wss:// (the pages' socket) when it is a plain
    host[:port], never text that could end the directive."""
    ws = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    return {"Content-Security-Policy": _CSP.format(ws=ws), **_STATIC_HEADERS}


# --- logging refusals ------------------------------------------------------------------
