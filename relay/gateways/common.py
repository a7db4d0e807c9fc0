"""What every telephony gateway shares: the keys a phone has, the event a gateway
hands the relay, and the one way it publishes it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import ProtocolError

# The sixteen DTMF keys (RFC 4733 events 0–15).
KEYS = frozenset("0123456789*#ABCD")

PublishFn = Callable[[str, dict[str, Any]], object]
CountError = Callable[[str], None]


@dataclass(frozen=True)
class Event:
    """An event for the relay to publish."""

    channel: str
    data: dict[str, Any]


class Publisher:
    """Publishes a gateway's events on the relay's hub. An event the hub refuses (a
    full channel table, say) is counted and logged, never raised: one caller's event
    never ends another's call."""

    def __init__(self, publish: PublishFn, count_error: CountError, log: logging.Logger) -> None:
        self._publish = publish
        self._count_error = count_error
        self._log = log

    def __call__(self, out: Event) -> None:
        try:
            self._publish(out.channel, out.data)
        except ProtocolError as exc:
            self._count_error(exc.code)
            self._log.warning("event not published: %s (%s)", exc.code, exc.message)
