"""SIP over TCP (RFC 3261 §18.3): messages framed by Content-Length, with caps, and
RFC 5626 §3.5.1 keep-alives (a CRLF pair "ping" is answered with one CRLF "pong").

`Framer` is pure: bytes in, whole messages out; a message larger than
`message.MAX_MESSAGE`, or headers without a readable Content-Length, raise `SipError`
(the connection is then closed: a stream cannot be resynchronised).
"""

from __future__ import annotations

from .message import MAX_MESSAGE, SipError

_LENGTH_NAMES = (b"content-length", b"l")


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in _LENGTH_NAMES:
            text = value.strip()
            if not text.isdigit() or len(text) > 6:
                break
            return int(text)
    raise SipError("bad_sip", "a stream message without a readable Content-Length")


class Framer:
    """Whole messages out of a stream's bytes; `pings` counts keep-alives to answer."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.buffer = bytearray()
        self.pings = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        messages: list[bytes] = []
        while True:
            if len(self.buffer) < 4 and b"\r\n\r\n".startswith(self.buffer):
                return messages  # perhaps a keep-alive, still arriving
            if self.buffer.startswith(b"\r\n\r\n"):
                self.pings += 1
                del self.buffer[:4]
                continue
            if self.buffer.startswith(b"\r\n"):
                del self.buffer[:2]  # §7.5: CRLFs before a start line are ignored
                continue
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > self.max_message:
                    raise SipError("too_large", f"headers over {self.max_message} bytes", 413)
                return messages
            total = end + 4 + _content_length(bytes(self.buffer[:end]))
            if total > self.max_message:
                raise SipError("too_large", f"message over {self.max_message} bytes", 413)
            if len(self.buffer) < total:
                return messages
            messages.append(bytes(self.buffer[:total]))
            del self.buffer[:total]
