"""SIP messages for the gateway's tests: an INVITE as a carrier sends one, with an
SDP offer (G.729, PCMA, PCMU and telephone-event on 97)."""

from __future__ import annotations

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
