"""SIP messages for the gateway's tests: an INVITE as a carrier sends one, with an
SDP offer (G.729, PCMA, PCMU and telephone-event on 97), requests in its dialog, and
a user agent under test with what it sends read back."""

from __future__ import annotations

from relay.gateways.sip.message import Message, parse
from relay.gateways.sip.timers import Action, Send
from relay.gateways.sip.ua import Limits, UserAgent

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 18 8 0 97\r\na=rtpmap:18 G729/8000\r\n"
    "a=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-16\r\n"
)


def invite(*headers: str, body: str = OFFER) -> bytes:
    lines = [
        "INVITE sip:jam@192.0.2.1 SIP/2.0",
        "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport",
        "From: <sip:+4930123456@carrier.example>;tag=1928301774",
        "To: <sip:jam@192.0.2.1>",
        "Call-ID: a84b4c76e66710",
        "CSeq: 314159 INVITE",
        "Contact: <sip:gw@198.51.100.7>",
        *headers,
        f"Content-Length: {len(body.encode())}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


KEY = b"test key"
CARRIER = ("198.51.100.7", 5060)


def agent(**limits: object) -> tuple[UserAgent, list[int]]:
    ports = list(range(20000, 20010, 2))
    given: list[int] = []

    def allocate() -> int | None:
        if not ports:
            return None
        given.append(ports.pop(0))
        return given[-1]

    ua = UserAgent(
        host="192.0.2.1",
        port=5060,
        key=KEY,
        allocate=allocate,
        allowed=lambda address: address.startswith("198.51.100."),
        limits=Limits(**limits),  # type: ignore[arg-type]
    )
    ua.start(0.0)
    return ua, given


def sent(actions: list[Action]) -> list[Message]:
    return [parse(a.data) for a in actions if isinstance(a, Send)]


def statuses(actions: list[Action]) -> list[int]:
    return [m.status for m in sent(actions)]


def in_dialog(method: str, to_tag: str, cseq: int = 2, branch: str = "z9hG4bKdlg") -> bytes:
    text = invite().decode().split("\r\n\r\n")[0]
    text = text.replace("INVITE sip:jam", f"{method} sip:jam").replace("z9hG4bK776asdhds", branch)
    text = text.replace("To: <sip:jam@192.0.2.1>", f"To: <sip:jam@192.0.2.1>;tag={to_tag}")
    text = text.replace(
        "CSeq: 314159 INVITE", f"CSeq: {cseq if method != 'ACK' else 314159} {method}"
    )
    text = text.replace(f"Content-Length: {len(OFFER)}", "Content-Length: 0")
    return (text + "\r\n\r\n").encode()
