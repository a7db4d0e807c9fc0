"""What one relay holds: its settings, fan-out, sockets, sessions, limits and counters.

`RelayState` is reachable from the app (`STATE`), never a module global; the HTTP
routes (relay/app.py) and the WebSocket connections (relay/connections.py) share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web

from . import protocol
from .admission import Publisher, admit
from .channel import Channel
from .config import RelayConfig
from .contract.callers import addressee
from .contract.channels import CALLERS_SUFFIX
from .contract.privacy import pseudonym
from .edge import counted_as
from .fanout import FanOut, Outbox
from .listener import EdgeGuard
from .protocol import ProtocolError
from .ratelimit import BucketsByKey, LogOnce
from .sessions import Sessions

if TYPE_CHECKING:
    from .backplane import RedisBackplane
    from .connections import Connection, Flusher, Registry
    from .phone_feed import PhoneFeed
    from .sharedlimits import SharedBuckets

log = logging.getLogger("relay")

# Who is held to `publisher_rate`: a seed publisher's token and nothing more (the
# operator's console and the billboard are the installation's own).
PUBLISHER_ONLY = frozenset({"publisher"})


@dataclass
class RelayState:
    """Everything one relay holds, reachable from the app (no module globals)."""

    config: RelayConfig
    hub: FanOut
    # Every open WebSocket (relay clients and gateways' streams) and their one way out.
    sockets: Registry
    flusher: Flusher  # runs the fan-out's rounds of writes
    started: float = field(default_factory=time.monotonic)
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
    # Keypad callers who said `leave` themselves: their going away is no second leave.
    left_callers: set[tuple[str, str]] = field(default_factory=set)
    # Keypad callers who joined or pressed a key: only they hold a place to leave (a
    # keypad that only listened, its page open and no key pressed, holds none).
    played_callers: set[tuple[str, str]] = field(default_factory=set)
    wall: Callable[[], float] = time.time
    # Set: every channel is shared with the other relays through Redis.
    backplane: RedisBackplane | None = None
    phone: PhoneFeed | None = None  # the billboard's music for the calls (phone_music)
    # With the backplane: the per-address buckets every relay shares (sessions minted,
    # HTTP publishes), asked after this relay's own (relay/sharedlimits.py).
    shared_buckets: SharedBuckets | None = None
    _unheard_log: LogOnce = field(default_factory=lambda: LogOnce(every_s=60.0))

    @property
    def connections(self) -> list[Connection]:
        """The relay's own WebSocket clients (not the gateways' streams)."""
        return self.sockets.connections()

    def publish(
        self,
        channel: str,
        data: dict[str, Any],
        origin: Outbox | None = None,
        create: bool = True,
    ) -> Channel:
        """Publish on the fan-out now (the relay's clocks); raises ProtocolError for a
        channel it refuses. The gateways publish through this too. With a backplane the
        event is on its way (`publish_shared`), and a failure is counted and logged."""
        if self.backplane is not None:
            ch = self.hub.channel(channel, create)
            self.publish_shared(channel, data, origin, create).add_done_callback(self._unheard)
            return ch
        to = addressee(data) if channel.endswith(CALLERS_SUFFIX) else None
        return self.hub.publish(
            channel, data, time.monotonic(), time.time_ns() // 1_000_000, origin, create, to
        )

    def publish_shared(
        self,
        channel: str,
        data: dict[str, Any],
        origin: Outbox | None = None,
        create: bool = True,
    ) -> asyncio.Future[tuple[int, str]]:
        """Publish through the backplane: the future gives (seq, epoch) once Redis holds
        the event, or fails with ProtocolError (backplane_unavailable, or rate_limited:
        the caller's rate is held in Redis, for every relay at once). Raises
        ProtocolError at once for a channel this relay refuses."""
        assert self.backplane is not None
        self.hub.channel(channel, create)
        to = addressee(data) if channel.endswith(CALLERS_SUFFIX) else None
        caller = data.get("caller") if channel in self.public_channels else None
        return self.backplane.publish(
            channel, protocol.dumps(data), to, origin, caller if isinstance(caller, str) else None
        )

    def _unheard(self, fut: asyncio.Future[tuple[int, str]]) -> None:
        """A publish nobody waits for (a gateway's, a keypad's leave) failed: count it
        and say so, once a minute per reason."""
        if fut.cancelled():
            return
        exc = fut.exception()
        if isinstance(exc, ProtocolError):
            self.count_error(exc.code)
            self._unheard_log.log(
                log, logging.WARNING, exc.code, "event not published: %s (%s)", exc.code,
                exc.message, now=time.monotonic(),
            )  # fmt: skip
        elif exc is not None:
            log.error("publishing through the backplane failed", exc_info=exc)

    async def address_allows(
        self, buckets: BucketsByKey, kind: str, address: str, now: float, cost: float = 1.0
    ) -> bool:
        """Whether `address` may do one more of `kind` (cost `cost`): this relay's
        bucket first (a flood stops here, unheard by Redis), then, with the backplane,
        the bucket all relays share, so N relays do not make the limit N times."""
        if not buckets.allow(address, now, cost):
            return False
        shared = self.shared_buckets
        if shared is None:
            return True
        return await shared.allow(kind, counted_as(address), buckets.rate, buckets.burst, cost)

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
            and self.backplane is None  # then the caller's rate is held in Redis
            and not buckets.allow(caller, time.monotonic())
        ):
            raise ProtocolError("rate_limited", "this caller sends too fast; event dropped")
        return admitted

    def caller_said(self, caller: str, channel: str, event: object) -> None:
        """A keypad's caller published `event`: after their own `leave` the relay does
        not say it for them again when the keypad goes; a later `join` or `digit`
        (the same session playing again) undoes that."""
        key = (caller, channel)
        if event == "leave":
            self.left_callers.add(key)
        else:
            self.left_callers.discard(key)
            self.played_callers.add(key)

    def caller_opened(self, key: tuple[str, str]) -> None:
        self.live_callers[key] = self.live_callers.get(key, 0) + 1
        if self.backplane is not None:
            caller, channel = key
            self.backplane.claim(channel, caller, self.config.session_ttl_s)

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
        played = key in self.played_callers
        self.played_callers.discard(key)
        if key in self.left_callers:
            self.left_callers.discard(key)
            return  # they said `leave` themselves
        if not played:
            return  # they only listened: no place to give back
        if self.backplane is not None:
            self.backplane.spawn(self._leave_unless_elsewhere(key))
            return
        self._leave(key)

    async def _leave_unless_elsewhere(self, key: tuple[str, str]) -> None:
        """Say the leave, unless the keypad came back on another relay meanwhile."""
        assert self.backplane is not None
        caller, channel = key
        if await self.backplane.holds(channel, caller) and not self.live_callers.get(key):
            self._leave(key)

    def _leave(self, key: tuple[str, str]) -> None:
        caller, channel = key
        try:
            self.publish(channel, {"event": "leave", "caller": caller, "reason": "closed"})
        except ProtocolError as exc:
            self.count_error(exc.code)

    def billboards(self) -> int:
        """Billboard connections subscribed to the installation's channel."""
        channel = self.config.channel
        return sum(
            1
            for conn in self.sockets.connections()
            if "billboard" in conn.roles and channel in conn.outbox.subscriptions
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


def publisher_cost(size: int) -> float:
    """What a publisher's frame of `size` bytes takes from its bucket: one, or one per
    KiB (`publisher_rate` bounds the bytes the relay must read, not only the frames)."""
    return max(1.0, size / 1024)


def bearer(request: web.Request) -> str | None:
    value = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
