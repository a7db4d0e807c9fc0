"""The SDP offer/answer of a call (RFC 3264, RFC 4566): which codec and telephone-event
payload type the caller offered and where its RTP comes from, and our answer.

We take G.711 only (PCMU, payload type 0, or PCMA, 8: what every trunk offers, and what
the in-band detector reads) plus ``telephone-event/8000`` on whatever dynamic payload
type the caller chose (RFC 4733 §7.1.1). An offer with neither codec is refused (488).
`offer` is total: it returns an `Offer` or raises `SdpError`.

Directions (RFC 3264 §5.1, §6.1): an offer's stream is ``sendrecv`` (the default),
``sendonly``, ``recvonly`` or ``inactive`` (the media line's attribute, else the
session's); a connection address of 0.0.0.0 is RFC 2543's hold (the offerer receives
nothing). Our answer sends only where the offerer receives and we have something to
send (the relay's phone music), and receives only where the offerer sends.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .message import SipError

MAX_LINES = 200
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
CODECS = {"pcmu": 0, "pcma": 8}  # RFC 3551 §6: their static payload types
_STATIC = {0: "pcmu", 8: "pcma"}


class SdpError(SipError):
    """An offer we cannot answer: 488 Not Acceptable Here (RFC 3261 §13.3.1.1)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_sdp", message, 488)


@dataclass(frozen=True, slots=True)
class Offer:
    """What we answer: the caller's RTP address, the codec's payload type, the
    telephone-event payload type (None when not offered), and the offer's m= lines
    (media, proto, first format) so the answer rejects the others in order."""

    address: str
    port: int
    codec: int
    codec_name: str  # "PCMU" or "PCMA"
    events: int | None
    media_index: int
    media: tuple[tuple[str, str, str], ...]
    direction: str = "sendrecv"  # the offerer's, as it said it

    @property
    def receives(self) -> bool:
        """Whether the offerer takes our media (and said where: not 0.0.0.0)."""
        held = self.address in ("0.0.0.0", "::")
        return self.direction in ("sendrecv", "recvonly") and not held

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")


def offer(body: bytes) -> Offer:
    """The offer in an INVITE's body; raises `SdpError` (488) when it has no usable
    audio stream, or it is not SDP at all."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("the SDP is not UTF-8") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("v=0") or len(lines) > MAX_LINES:
        raise SdpError("not an SDP offer")
    session_address = ""
    media: list[tuple[str, str, str]] = []
    current: tuple[str, int, str, list[str]] | None = None
    address = ""
    rtpmaps: dict[int, str] = {}
    session_direction = direction = ""
    candidates: list[tuple[int, str, int, list[str], dict[int, str], str]] = []

    def close() -> None:
        if current is not None:
            kind, port, proto, formats = current
            if kind == "audio" and port > 0 and proto.upper() == "RTP/AVP":
                way = direction or session_direction or "sendrecv"
                candidates.append((len(media) - 1, address, port, formats, dict(rtpmaps), way))

    for line in lines:
        key, _, value = line.partition("=")
        if key == "m":
            close()
            fields = value.split()
            if len(fields) < 4 or not fields[1].split("/")[0].isdigit():
                raise SdpError("a bad m= line")
            port = int(fields[1].split("/")[0][:6])
            current = (fields[0].lower(), port, fields[2], fields[3:][:32])
            media.append((fields[0], fields[2], fields[3]))
            address, rtpmaps, direction = session_address, {}, ""
        elif key == "c":
            fields = value.split()
            if len(fields) < 3 or fields[0] != "IN" or fields[1] not in ("IP4", "IP6"):
                raise SdpError("a bad c= line")
            found = fields[2].split("/")[0]
            if current is None:
                session_address = found
            else:
                address = found
        elif key == "a" and value in DIRECTIONS:
            if current is None:
                session_direction = value
            else:
                direction = value
        elif key == "a" and value.startswith("rtpmap:") and current is not None:
            pt, _, encoding = value[len("rtpmap:") :].partition(" ")
            if pt.isdigit() and int(pt[:4]) < 128:
                rtpmaps[int(pt)] = encoding.strip().lower()
    close()
    chosen = next((c for c in candidates if _codec(c[3], c[4]) is not None), None)
    if chosen is None:
        raise SdpError("no PCMU or PCMA audio stream offered (RTP/AVP)")
    index, where, port, formats, maps, way = chosen
    try:
        ipaddress.ip_address(where)
    except ValueError:
        raise SdpError("the audio's connection address is not an IP address") from None
    codec_found = _codec(formats, maps)
    assert codec_found is not None
    codec, name = codec_found
    events = next(
        (int(f) for f in formats if f.isdigit() and maps.get(int(f)) == "telephone-event/8000"),
        None,
    )
    if port > 65535:
        raise SdpError("a bad port")
    return Offer(where, port, codec, name, events, index, tuple(media), way)


OUR_EVENTS = 101  # the telephone-event payload type of our own offer


def our_offer(address: str, port: int, session_id: int, send: bool = False) -> bytes:
    """Our offer, in the 200 to an INVITE that carried none (RFC 3261 §13.2.1: the
    caller answers in its ACK): PCMU, PCMA and telephone-event; send-and-receive when
    we `send` (the phone music), else receive-only."""
    family = "IP6" if ":" in address else "IP4"
    return (
        f"v=0\r\no=dialjam {session_id} {session_id} IN {family} {address}\r\ns=dialjam\r\n"
        f"c=IN {family} {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 {OUR_EVENTS}\r\n"
        f"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:{OUR_EVENTS} telephone-event/8000\r\na=fmtp:{OUR_EVENTS} 0-15\r\n"
        f"a=ptime:20\r\na={'sendrecv' if send else 'recvonly'}\r\n"
    ).encode()


def _codec(formats: list[str], maps: dict[int, str]) -> tuple[int, str] | None:
    """The first of the offered formats that is PCMU or PCMA at 8 kHz (the offerer's
    order is its preference, RFC 3264 §5.1)."""
    for fmt in formats:
        if not fmt.isdigit() or int(fmt) > 127:
            continue
        pt = int(fmt)
        name = maps.get(pt)
        if name is None and pt in _STATIC:
            return pt, _STATIC[pt].upper()
        encoding, _, rate = name.partition("/") if name is not None else ("", "", "")
        if encoding in CODECS and rate.partition("/")[0] == "8000":
            return pt, encoding.upper()
    return None


def direction(found: Offer, send: bool) -> str:
    """Our answer's direction (RFC 3264 §6.1): we send where the offerer receives and
    we `send` at all; we receive where it sends."""
    ours = (send and found.receives, found.sends)
    return {
        (True, True): "sendrecv",
        (True, False): "sendonly",
        (False, True): "recvonly",
        (False, False): "inactive",
    }[ours]


def answer(
    found: Offer, address: str, port: int, session_id: int, version: int = 0, send: bool = False
) -> bytes:
    """Our answer (RFC 3264 §6): one m= line per offered one, the audio accepted on our
    RTP `port` with the codec and telephone-event type the caller chose, in the
    `direction` its offer and our `send` allow, every other stream rejected with port
    0. `version`: the o= line's, one more each time a re-INVITE changes the answer."""
    family = "IP6" if ":" in address else "IP4"
    lines = [
        "v=0",
        f"o=dialjam {session_id} {session_id + version} IN {family} {address}",
        "s=dialjam",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    for index, (kind, proto, first) in enumerate(found.media):
        if index != found.media_index:
            lines.append(f"m={kind} 0 {proto} {first}")
            continue
        formats = [str(found.codec)] + ([] if found.events is None else [str(found.events)])
        lines.append(f"m=audio {port} RTP/AVP {' '.join(formats)}")
        lines.append(f"a=rtpmap:{found.codec} {found.codec_name}/8000")
        if found.events is not None:
            lines.append(f"a=rtpmap:{found.events} telephone-event/8000")
            lines.append(f"a=fmtp:{found.events} 0-15")
        lines.append("a=ptime:20")
        lines.append(f"a={direction(found, send)}")
    return ("\r\n".join(lines) + "\r\n").encode()
