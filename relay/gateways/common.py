"""What every telephony gateway shares: the keys a phone has, the event a gateway
hands the relay, and the one way it publishes it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from ..contract.errors import PeerError

# The sixteen DTMF keys (RFC 4733 events 0–15), as the contract names them.
from ..contract.events import KEYS as KEYS
from ..contract.events import Digit, Join, Leave, to_data
from ..ratelimit import LogOnce

PublishFn = Callable[[str, dict[str, Any]], object]
CountError = Callable[[str], None]


E = TypeVar("E", bound=PeerError)


def json_object(frame: str | bytes, kind_field: str, error: type[E]) -> tuple[dict[str, Any], str]:
    """A provider's JSON message and its kind (the string in `kind_field`); raises
    `error` when it is not JSON, not an object, or has no kind."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise error("bad_json", "not JSON") from None
    if not isinstance(msg, dict):
        raise error("bad_json", "not a JSON object")
    kind = msg.get(kind_field)
    if not isinstance(kind, str):
        raise error("bad_field", f"{kind_field} missing or not a string")
    return msg, kind


@dataclass(frozen=True)
class Event:
    """An event for the relay to publish."""

    channel: str
    data: dict[str, Any]


# The event shapes are the contract's (relay/contract/events.py), written by it.


def join_event(channel: str, caller: str, source: str, display: str | None) -> Event:
    return Event(channel, to_data(Join(caller, source, display)))


def digit_event(channel: str, caller: str, key: str, source: str) -> Event:
    return Event(channel, to_data(Digit(caller, key, source)))


def leave_event(channel: str, caller: str, reason: str = "hangup") -> Event:
    """A caller leaves: their call ended (``hangup``), or the gateway no longer hears it
    (``lost``; the contract's `PUBLIC_LEAVE_REASONS`)."""
    return Event(channel, to_data(Leave(caller, reason)))


def websocket_url(url: str) -> str:
    """https://… → wss://…, http://… → ws://…"""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


class Publisher:
    """Publishes a gateway's events on the relay's hub. An event the hub refuses (a
    full channel table, say) is counted and logged (once a minute per reason), never
    raised: one caller's event never ends another's call."""

    def __init__(self, publish: PublishFn, count_error: CountError, log: logging.Logger) -> None:
        self._publish = publish
        self._count_error = count_error
        self._log = log
        self._logged = LogOnce(every_s=60.0)

    def __call__(self, out: Event) -> None:
        try:
            self._publish(out.channel, out.data)
        except PeerError as exc:
            self._count_error(exc.code)
            self._logged.log(
                self._log,
                logging.WARNING,
                exc.code,
                "event not published: %s (%s)",
                exc.code,
                exc.message,
                now=time.monotonic(),
            )
