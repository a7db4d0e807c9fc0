"""SIP messages (RFC 3261 §7, §20, §25): a total parser with a cap on everything it
reads, and the few writers a user agent server needs.

`parse` takes any bytes and returns a `Message` or raises `SipError` (a `PeerError`):
never another exception, never unbounded work. It reads the start line, header lines
with folding (§7.3.1), compact header names (§7.3.3), header values combined with
commas (§7.3.1), Content-Length (§20.14; required on a stream, §18.3) and the body.
`via`, `name_addr` and `uri_user` read the header values the gateway acts on.

No kept library was used: aiosip (2017, unmaintained) and asyncsip (2020) have no
size caps and raise anything on bad input; aiosipua (2026) is young and brings its own
transports. A total parser of the subset a UAS reads is short (this module).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...contract.errors import PeerError

MAX_MESSAGE = 16384  # bytes: far above any INVITE a trunk sends (1–3 KB)
MAX_HEADERS = 80
MAX_LINE = 2048
MAX_VALUES = 32  # values of one comma-combined header (Via, Record-Route)
MAX_BODY = 8192

SIP_VERSION = "SIP/2.0"
# §7.3.3 and the IANA registry: compact form → full name (lower case).
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "u": "allow-events",
}
# Headers whose values may be combined with commas (§7.3.1): the ones read as lists.
LIST_HEADERS = frozenset({"via", "record-route", "route"})
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")  # §25.1 token
_STATUS = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ?(.*)")


class SipError(PeerError):
    """A SIP message that cannot be used; `status` is the response it deserves (400,
    413, 505…), or 0 when it deserves none (a bad response, garbage)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Message:
    """A request (`method`, `uri`) or a response (`status`, `reason`). Header names are
    the full names in lower case, in arrival order; list headers are split into one
    entry per value."""

    method: str
    uri: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def cseq(self) -> tuple[int, str]:
        """The CSeq's number and method (§20.16), both checked by `parse`."""
        number, method = (self.get("cseq") or "0 ?").split()
        return int(number), method


def _split_list(value: str) -> list[str]:
    """A header value split at commas outside quotes and angle brackets (§7.3.1)."""
    parts: list[str] = []
    depth, quoted, start, index = 0, False, 0, 0
    while index < len(value):
        ch = value[index]
        if quoted:
            if ch == "\\":
                index += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:index].strip())
            start = index + 1
        index += 1
    parts.append(value[start:].strip())
    return [part for part in parts if part]


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """The head (start line and headers) and what follows the blank line, or None when
    the blank line has not come yet. Bare LF line ends are tolerated (§7.5 asks for
    CRLF; some stacks send LF)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, rest = data.partition(separator)
        if found:
            return head, rest
    return None


def parse(data: bytes, *, stream: bool = False) -> Message:
    """One SIP message from a datagram (`stream=False`: the body is the rest, cut to
    Content-Length when given) or a whole framed message from a stream (Content-Length
    required, §18.3). Raises `SipError`, nothing else."""
    if len(data) > MAX_MESSAGE:
        raise SipError("too_large", f"message over {MAX_MESSAGE} bytes", 413)
    parts = split_head(data.lstrip(b"\r\n"))  # §7.5: CRLFs before the start line are ignored
    if parts is None:
        raise SipError("bad_sip", "no blank line after the headers")
    head, rest = parts
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipError("bad_sip", "the headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    method, uri, status, reason = _start_line(lines[0])
    headers = _headers(lines[1:], status)
    message = Message(method, uri, status, reason, tuple(headers), b"")
    _check_required(message)
    length_text = message.get("content-length")
    if length_text is None:
        if stream:
            raise SipError("bad_sip", "Content-Length is required on a stream")
        length = len(rest)
    else:
        if not length_text.isdigit() or len(length_text) > 6:
            raise SipError("bad_sip", "Content-Length is not a number")
        length = int(length_text)
        if length > len(rest):
            raise SipError("bad_sip", "the body is shorter than Content-Length")
    if length > MAX_BODY:
        raise SipError("too_large", f"body over {MAX_BODY} bytes", 413)
    return Message(method, uri, status, reason, tuple(headers), rest[:length])


def _start_line(line: str) -> tuple[str, str, int, str]:
    if len(line) > MAX_LINE:
        raise SipError("too_large", "start line too long", 414)
    if line.startswith("SIP/"):
        match = _STATUS.fullmatch(line)
        if match is None:
            raise SipError("bad_sip", "bad status line", 0)
        return "", "", int(match.group(1)), match.group(2)[:128]
    fields = line.split(" ")
    if len(fields) != 3 or not _TOKEN.fullmatch(fields[0]) or not fields[1]:
        raise SipError("bad_sip", "bad request line", 0)
    if fields[2] != SIP_VERSION:
        raise SipError("bad_version", f"version {fields[2][:16]!r} is not SIP/2.0", 505)
    return fields[0], fields[1], 0, ""


def _headers(lines: list[str], status: int) -> list[tuple[str, str]]:
    joined: list[str] = []
    for line in lines:
        if len(line) > MAX_LINE:
            raise SipError("too_large", "header line too long")
        if line[:1] in (" ", "\t") and joined:  # §7.3.1: folded onto the previous line
            joined[-1] += " " + line.strip()
            if len(joined[-1]) > MAX_LINE:
                raise SipError("too_large", "header line too long")
        elif line:
            joined.append(line)
    if len(joined) > MAX_HEADERS:
        raise SipError("too_large", f"more than {MAX_HEADERS} header lines")
    headers: list[tuple[str, str]] = []
    for line in joined:
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not _TOKEN.fullmatch(name):
            raise SipError("bad_sip", "a header line without a name")
        name = COMPACT.get(name, name)
        value = value.strip()
        if name in LIST_HEADERS:
            values = _split_list(value)
            if len(values) > MAX_VALUES:
                raise SipError("too_large", f"more than {MAX_VALUES} {name} values")
            headers.extend((name, item) for item in values)
        else:
            headers.append((name, value))
    if sum(1 for name, _ in headers if name in LIST_HEADERS) > 4 * MAX_VALUES:
        raise SipError("too_large", "too many Via/Route values")
    return headers


def _check_required(message: Message) -> None:
    """§8.1.1: To, From, CSeq, Call-ID and Via are mandatory; CSeq is a number and the
    request's method (§8.1.1.5, §20.16)."""
    for name in ("via", "from", "to", "call-id", "cseq"):
        if message.get(name) is None:
            raise SipError("bad_sip", f"no {name} header")
    fields = (message.get("cseq") or "").split()
    if len(fields) != 2 or not fields[0].isdigit() or len(fields[0]) > 10:
        raise SipError("bad_sip", "bad CSeq")
    if int(fields[0]) >= 2**31 or not _TOKEN.fullmatch(fields[1]):
        raise SipError("bad_sip", "bad CSeq")
    if message.is_request and fields[1] != message.method and message.method != "ACK":
        raise SipError("bad_sip", "the CSeq method differs from the request's")
    if message.is_request and message.method == "ACK" and fields[1] != "ACK":
        raise SipError("bad_sip", "the CSeq method differs from the request's")
    if len(message.get("call-id") or "") > 256:
        raise SipError("bad_sip", "Call-ID too long")


# -- header values --


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (§20.42): ``SIP/2.0/UDP host[:port];branch=…;rport;received=…``."""

    transport: str
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...]

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return "" if value is None else value
        return None


def _params(text: str) -> tuple[tuple[str, str | None], ...]:
    params: list[tuple[str, str | None]] = []
    for item in text.split(";")[:32]:
        key, equals, value = item.partition("=")
        key = key.strip().lower()
        if key:
            params.append((key, value.strip() if equals else None))
    return tuple(params)


def via(value: str) -> Via:
    """Read a Via value; raises `SipError`."""
    protocol, _, rest = value.strip().partition(" ")
    pieces = [piece.strip() for piece in protocol.split("/")]
    if len(pieces) != 3 or pieces[0].upper() != "SIP" or pieces[1] != "2.0":
        raise SipError("bad_sip", "bad Via protocol")
    sent_by, _, params = rest.strip().partition(";")
    host, port = host_port(sent_by.strip())
    return Via(pieces[2].upper(), host, port, _params(params))


def host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port``; raises `SipError`."""
    if text.startswith("["):
        host, _, after = text[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
        if after and not after.startswith(":"):
            raise SipError("bad_sip", "bad host")
    else:
        host, _, port_text = text.partition(":")
    if not host or len(host) > 255 or any(ch in host for ch in " \t<>;\"'"):
        raise SipError("bad_sip", "bad host")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text[:6]) < 65536:
        raise SipError("bad_sip", "bad port")
    return host, int(port_text)


def name_addr(value: str) -> tuple[str, tuple[tuple[str, str | None], ...]]:
    """The URI and the header parameters of a From, To, Contact, P-Asserted-Identity
    or Record-Route value (§20.10, §25.1): ``"Name" <uri>;tag=x`` or ``uri;tag=x``."""
    text = value.strip()
    if text.startswith('"'):
        end = 1
        while end < len(text) and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        text = text[end + 1 :].strip()
    if "<" in text:
        start = text.index("<")
        end = text.find(">", start)
        if end < 0:
            raise SipError("bad_sip", "unclosed <")
        return text[start + 1 : end].strip(), _params(text[end + 1 :].partition(";")[2])
    uri, _, params = text.partition(";")
    return uri.strip(), _params(params)


def tag_of(value: str | None) -> str:
    """The ``tag`` parameter of a From or To value, or "" (none, or unreadable)."""
    if value is None:
        return ""
    try:
        _, params = name_addr(value)
    except SipError:
        return ""
    return next((v or "" for k, v in params if k == "tag"), "")[:128]


def uri_user(uri: str) -> str:
    """The user part of a sip:, sips: or tel: URI ("" when it has none)."""
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return ""
    if scheme.lower() == "tel":
        return rest.partition(";")[0][:64]
    if scheme.lower() not in ("sip", "sips"):
        return ""
    user, at, _ = rest.partition("@")
    return user.partition(";")[0].partition(":")[0][:64] if at else ""


def uri_host_port(uri: str) -> tuple[str, int | None]:
    """The host and port of a sip: URI (`SipError` when it has none)."""
    _, _, rest = uri.partition(":")
    rest = rest.rpartition("@")[2]
    return host_port(rest.partition(";")[0].partition("?")[0])


# -- writers --


def render(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A message: the start line, the headers as given, Content-Length, the body."""
    lines = [start, *(f"{name}: {value}" for name, value in headers)]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    505: "Version Not Supported",
}

_NAMES = {
    "via": "Via",
    "from": "From",
    "to": "To",
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "record-route": "Record-Route",
}


def response(
    request: Message,
    status: int,
    *,
    vias: list[str],
    to_tag: str = "",
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """A response to `request` (§8.2.6.2): its Vias (as `vias` gives them, with
    `received`/`rport` filled), From, Call-ID and CSeq copied, To with our tag (unless
    it has one), then `extra` headers and the body."""
    headers = [("Via", value) for value in vias]
    to = request.get("to") or ""
    if to_tag and not tag_of(to) and status != 100:
        to = f"{to};tag={to_tag}"
    headers += [
        ("From", request.get("from") or ""),
        ("To", to),
        ("Call-ID", request.get("call-id") or ""),
        ("CSeq", request.get("cseq") or ""),
    ]
    headers += extra or []
    return render(f"SIP/2.0 {status} {REASONS.get(status, 'Unknown')}", headers, body)
