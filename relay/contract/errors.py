"""The peer's fault, as one family of exceptions.

Errors split as in h11: a message from outside that we cannot use (a bad frame, a
provider's odd event, a refused token) is the peer's fault — answered or counted,
logged once, and the service goes on — while anything else is our bug, logged with
its traceback. Every "peer's fault" in dialjam subclasses `PeerError`, so one
``except PeerError`` tells the two apart wherever a door meets the outside.
"""

from __future__ import annotations


class PeerError(Exception):
    """A message from a peer that cannot be used: never the relay's fault, never fatal
    to it. `code` names it in the error counters (and in the ``error`` frame a client
    is answered with); `message` says what was wrong, for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


__all__ = ["PeerError"]
