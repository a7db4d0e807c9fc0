"""The relay's wire protocol, free of I/O.

Frames in are parsed into small frozen requests; frames out are encoded to bytes once
and shared by every subscriber. Parsing never raises anything but `ProtocolError`,
which names the error code the peer is told (see the README's table of codes) and
whether the connection must be closed.

Seed (2010) frames::

    {"type":"subscriber","id":CH}
    {"type":"publisher","id":CH,"data":{...}}

v2 adds ``"v":2``, ``"since":N``, ``"epoch":E`` on subscribe, ``"ack":true`` and
``"ref":N`` on publish (the publisher's own number for the frame, 0 ≤ N < 2⁵³, given
back in its ack or error, so a keypad knows which press to send again; with
``"ack":"ref"`` the ack is only ``{"type":"ack","ref":N}``, a third of the bytes on a
phone's data plan), a top-level
``"token"`` (a role's token) or ``"session"`` (a keypad's caller session) on any
frame, and ``unsubscribe`` / ``ping``.

The relay's only copy of WebSocket framing (RFC 6455 §5) is here too: the text and
Close frames it writes itself, and `MaskCheck`, which follows a client's frames to find
one sent without a mask. aiohttp frames the rest (the handshake, pings, its own Close).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any, Final

import orjson

from .contract import channels as contract_channels
from .contract.errors import PeerError

# The channel grammar, the installation's channels and who may publish on them are the
# contract's (relay/contract/channels.py); the relay reads them through these names.
CHANNEL_ID: Final = contract_channels.CHANNEL_ID
CONTROL_SUFFIX: Final = contract_channels.CONTROL_SUFFIX
STATE_SUFFIX: Final = contract_channels.STATE_SUFFIX
CALLERS_SUFFIX: Final = contract_channels.CALLERS_SUFFIX
valid_channel = contract_channels.valid_channel
installation_channels = contract_channels.installation_channels
required_role = contract_channels.required_role

# Close codes (RFC 6455 §7.4.1).
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_TRY_AGAIN: Final = 1013


class ProtocolError(PeerError):
    """The peer's fault: answered with an ``error`` frame, logged once, never fatal to
    the relay. ``close`` is the WebSocket close code when the connection must end."""

    def __init__(self, code: str, message: str, close: int | None = None) -> None:
        super().__init__(code, message)
        self.close = close
        self.ref: int | None = None  # the refused publish's own number, when it gave one


@dataclass(frozen=True, slots=True)
class Subscribe:
    channel: str
    v: int = 1
    since: int | None = None
    epoch: str | None = None
    token: str | None = None
    session: str | None = None  # a keypad's: on NAME:callers it hears its caller's news


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Publish:
    channel: str
    data: dict[str, Any]
    ack: bool = False
    token: str | None = None
    session: str | None = None
    ref: int | None = None  # the publisher's number for it, echoed in its ack or error
    short_ack: bool = False  # "ack":"ref": the ack gives back the ref alone


# A publish's "ref": what a JavaScript number holds exactly.
REF_LIMIT: Final = 1 << 53


@dataclass(frozen=True, slots=True)
class Ping:
    token: str | None = None
    session: str | None = None


Request = Subscribe | Unsubscribe | Publish | Ping

KNOWN_TYPES: Final = ("subscriber", "publisher", "unsubscribe", "ping")


# orjson keeps integers from -2**63 to 2**64 - 1 and silently turns bigger ones into
# floats of at least 2**63 (9.2e18) in magnitude. Such an integer has 19 digits or
# more, so only a frame holding a run of 19 digits and a float that large is read
# again, token by token. The run is looked for with every digit mapped to "0" and every
# other byte to " ", in C: `re` searching [0-9]{19} steps through a frame a byte at a
# time (1 ms for 64 KiB here, 50 times orjson's whole parse), and a digit string must
# cost a stranger's frame no more than its letters would.
_DIGIT_RUN: Final = b"0" * 19
_DIGITS_ONLY: Final = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_FLOAT_FROM_BIG_INT: Final = 2.0**63
# JSON strings (in the unrolled form: a run of plain characters in one step), and an
# integer literal (neither a fraction's nor an exponent's digits) that could be out of
# range: 19 digits and a minus sign, or 20 digits and more.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_LONG_INTEGER: Final = re.compile(rb"(?<![0-9.eE+-])(?:-[0-9]{19,}|[0-9]{20,})(?![0-9.eE])")
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_CONTAINERS: Final = (dict, list)


def decode_json(text: str | bytes) -> Any:
    """Parse strict JSON (no NaN, integers within 64 bits) or raise ``bad_json``."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"frame is not valid JSON: {exc.msg}") from None
    raw = text.encode() if isinstance(text, str) else text
    if _DIGIT_RUN in raw.translate(_DIGITS_ONLY) and _has_big_float(obj) and _has_huge_integer(raw):
        raise ProtocolError("bad_json", "frame has an integer beyond 64 bits")
    return obj


def _has_big_float(obj: Any) -> bool:
    """Whether decoded JSON holds a float of at least 2**63 in magnitude: what orjson
    makes of an integer beyond 64 bits (or a float written that large). Each container's
    types are gathered in C, so a list of 30,000 numbers costs about what parsing it did."""
    if not isinstance(obj, _CONTAINERS):
        return isinstance(obj, float) and abs(obj) >= _FLOAT_FROM_BIG_INT
    stack = [obj]
    while stack:
        item = stack.pop()
        values = item.values() if isinstance(item, dict) else item
        kinds = set(map(type, values))
        if float in kinds and any(
            abs(v) >= _FLOAT_FROM_BIG_INT for v in values if isinstance(v, float)
        ):
            return True
        if dict in kinds or list in kinds:
            stack.extend(v for v in values if isinstance(v, _CONTAINERS))
    return False


def _has_huge_integer(raw: bytes) -> bool:
    """Whether valid JSON `raw` has an integer literal outside orjson's range (strings
    are blanked first, so digits inside them are never read as numbers)."""
    for match in _LONG_INTEGER.finditer(_STRING.sub(b'""', raw)):
        token = match.group()
        # Past 20 digits it is out of range (and int() refuses over 4,300 of them).
        if len(token) > 21 or not _INT_MIN <= int(token) <= _INT_MAX:
            return True
    return False


def parse_frame(text: str | bytes) -> Request:
    """Parse one text frame into a request, or raise `ProtocolError`."""
    return parse_object(decode_json(text))


def parse_object(obj: Any) -> Request:
    """Validate a decoded frame. Never raises anything but `ProtocolError`."""
    if not isinstance(obj, dict):
        raise ProtocolError("not_object", "a frame must be a JSON object")
    token = obj.get("token")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("bad_field", "token must be a string")
    session = obj.get("session")
    if session is not None and not isinstance(session, str):
        raise ProtocolError("bad_field", "session must be a string")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_type", 'a frame needs "type" as a string')
    if kind == "ping":
        return Ping(token=token, session=session)
    if kind not in KNOWN_TYPES:
        shown = kind[:32]
        raise ProtocolError(
            "unknown_type",
            f"unknown type {shown!r}; expected one of {', '.join(KNOWN_TYPES)}",
        )
    channel = obj.get("id")
    if not valid_channel(channel):
        raise ProtocolError("bad_id", '"id" must be 1–64 characters of A-Z a-z 0-9 _ . : -')
    assert isinstance(channel, str)
    if kind == "publisher":
        data = obj.get("data")
        if not isinstance(data, dict):
            raise ProtocolError("bad_data", 'a publisher frame needs "data" as a JSON object')
        ack = obj.get("ack", False)
        short = ack == "ref"
        if not isinstance(ack, bool) and not short:
            raise ProtocolError("bad_field", '"ack" must be true, false or "ref"')
        ref = obj.get("ref")
        if ref is not None and (
            not isinstance(ref, int) or isinstance(ref, bool) or not 0 <= ref < REF_LIMIT
        ):
            raise ProtocolError("bad_field", '"ref" must be an integer from 0 to 2^53 - 1')
        if short and ref is None:
            raise ProtocolError("bad_field", '"ack":"ref" needs a "ref" to give back')
        return Publish(
            channel=channel,
            data=data,
            ack=bool(ack),
            token=token,
            session=session,
            ref=ref,
            short_ack=short,
        )
    if kind == "unsubscribe":
        return Unsubscribe(channel=channel, token=token)
    v = obj.get("v", 1)
    if v not in (1, 2) or isinstance(v, bool):
        raise ProtocolError("bad_field", '"v" must be 1 or 2')
    since = obj.get("since")
    if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
        raise ProtocolError("bad_field", '"since" must be a non-negative integer')
    epoch = obj.get("epoch")
    if epoch is not None and not isinstance(epoch, str):
        raise ProtocolError("bad_field", '"epoch" must be a string')
    if since is not None and v != 2:
        raise ProtocolError("bad_field", '"since" needs "v":2')
    return Subscribe(channel=channel, v=v, since=since, epoch=epoch, token=token, session=session)


# --- frames out -------------------------------------------------------------------


def dumps(obj: object) -> bytes:
    """Compact JSON, as the seed relay sent it."""
    return orjson.dumps(obj)


def encode_envelope(channel_json: bytes, seq: int, ts_ms: int, data_json: bytes) -> bytes:
    """A v2 event envelope, built from pieces already encoded once per channel/event."""
    return b'{"type":"event","id":%b,"seq":%d,"ts":%d,"data":%b}' % (
        channel_json,
        seq,
        ts_ms,
        data_json,
    )


def encode_error(code: str, message: str, ref: int | None = None) -> bytes:
    """An error frame; `ref`: the refused publish's own number, when it gave one."""
    if ref is None:
        return dumps({"type": "error", "code": code, "message": message})
    return dumps({"type": "error", "code": code, "message": message, "ref": ref})


def encode_ack(
    channel: str, seq: int, epoch: str, ref: int | None = None, *, short: bool = False
) -> bytes:
    """A publish's ack: its `seq` in `channel`'s `epoch` (and its `ref`, when given);
    `short` (the publish said ``"ack":"ref"``): its `ref` alone."""
    if short and ref is not None:
        return dumps({"type": "ack", "ref": ref})
    ack: dict[str, object] = {"type": "ack", "id": channel, "seq": seq, "epoch": epoch}
    if ref is not None:
        ack["ref"] = ref
    return dumps(ack)


def encode_gap(channel: str, first: int, last: int, reason: str) -> bytes:
    """Events `first`..`last` (inclusive) of `channel` will never reach this subscriber;
    an empty range (last < first) means nothing of the current epoch is lost."""
    return dumps({"type": "gap", "id": channel, "from": first, "to": last, "reason": reason})


def coalesce(envelopes: list[bytes]) -> bytes:
    """Several envelopes for one v2 subscriber as one JSON-array frame."""
    if len(envelopes) == 1:
        return envelopes[0]
    return b"[" + b",".join(envelopes) + b"]"


# --- WebSocket framing (RFC 6455 §5.2), the relay's only copy -------------------------

_LEN1: Final = struct.Struct("!BB").pack
_LEN2: Final = struct.Struct("!BBH").pack
_LEN3: Final = struct.Struct("!BBQ").pack
_CLOSE: Final = struct.Struct("!BBH").pack
OP_TEXT: Final = 0x1
OP_CLOSE: Final = 0x8
FIN: Final = 0x80


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 §5.2: a server never masks)."""
    n = len(payload)
    if n < 126:
        return _LEN1(FIN | OP_TEXT, n) + payload
    if n < 65536:
        return _LEN2(FIN | OP_TEXT, 126, n) + payload
    return _LEN3(FIN | OP_TEXT, 127, n) + payload


def ws_close_frame(code: int, reason: bytes = b"") -> bytes:
    """An unmasked Close frame with `code` (RFC 6455 §5.5.1); `reason` is cut to fit
    a control frame's 125 bytes."""
    reason = reason[:123]
    return _CLOSE(FIN | OP_CLOSE, 2 + len(reason), code) + reason


class MaskCheck:
    """Follows the frames of a client's byte stream (RFC 6455 §5.2) and says whether
    every frame header so far had its mask bit set: §5.1, "a client MUST mask all frames
    that it sends to the server … The server MUST close the connection upon receiving a
    frame that is not masked". Only headers are read; payloads are skipped by length."""

    __slots__ = ("_head", "_skip")

    def __init__(self) -> None:
        self._skip = 0  # bytes of the current frame (mask key, payload) still to pass
        self._head = b""  # the start of a frame header split across reads

    def feed(self, data: bytes) -> bool:
        """False as soon as a frame without a mask starts in `data`."""
        if self._head:
            data = self._head + data
            self._head = b""
        end = len(data)
        pos = self._skip
        while pos < end:
            if pos + 2 > end:
                break
            second = data[pos + 1]
            if second < 0x80:  # the mask bit
                return False
            length = second & 0x7F
            if length < 126:
                pos += 6 + length  # header, mask key, payload
            elif length == 126:
                if pos + 4 > end:
                    break
                pos += 8 + (data[pos + 2] << 8 | data[pos + 3])
            else:
                if pos + 10 > end:
                    break
                pos += 14 + int.from_bytes(data[pos + 2 : pos + 10], "big")
        else:
            self._skip = pos - end
            return True
        self._head = data[pos:]  # a header cut short: read it whole with the next bytes
        self._skip = 0
        return True
