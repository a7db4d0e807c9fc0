"""The SIP message parser and the SDP offer/answer, without I/O: what RFC 3261 and
RFC 3264 say a message and an offer may look like, and that anything else is a
`SipError` (never another exception)."""

from __future__ import annotations

import contextlib
import random

import pytest

from relay.gateways.sip import sdp
from relay.gateways.sip.message import (
    MAX_HEADERS,
    MAX_MESSAGE,
    SipError,
    name_addr,
    parse,
    tag_of,
    uri_user,
    via,
)
from relay.gateways.sip.register import challenge, digest
from relay.gateways.sip.stream import Framer

from .sip_messages import OFFER, invite


def test_a_request_is_read_with_its_headers_by_full_lower_case_name() -> None:
    msg = parse(invite())
    assert (msg.method, msg.uri, msg.status) == ("INVITE", "sip:jam@192.0.2.1", 0)
    assert msg.get("call-id") == "a84b4c76e66710" and msg.cseq() == (314159, "INVITE")
    assert msg.body == OFFER.encode()


def test_compact_names_folding_and_comma_lists_read_as_the_long_forms() -> None:
    data = (
        b"INVITE sip:jam@192.0.2.1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example:5070;branch=z9hG4bK2\r\n"
        b"f: <sip:1@x>;tag=1\r\nt: <sip:jam@y>\r\ni: id\r\n"
        b"CSeq: 1\r\n INVITE\r\n"  # folded onto the line before (§7.3.1)
        b'Record-Route: <sip:p1;lr>, "a, b" <sip:p2;lr>\r\nl: 0\r\n\r\n'
    )
    msg = parse(data)
    assert len(msg.all("via")) == 2 and via(msg.all("via")[1]).port == 5070
    assert msg.all("record-route") == ["<sip:p1;lr>", '"a, b" <sip:p2;lr>']
    assert msg.cseq() == (1, "INVITE")


def test_a_response_is_read_too() -> None:
    msg = parse(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    assert (msg.status, msg.reason, msg.is_request) == (200, "OK", False)


def test_content_length_cuts_a_datagrams_body_and_is_required_on_a_stream() -> None:
    data = invite()
    assert parse(data + b"trailing junk").body == OFFER.encode()
    no_length = data.replace(f"Content-Length: {len(OFFER)}\r\n".encode(), b"")
    assert parse(no_length).body == OFFER.encode()
    with pytest.raises(SipError):
        parse(no_length, stream=True)
    with pytest.raises(SipError, match="shorter"):
        parse(data[:-10])


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"x" * (MAX_MESSAGE + 1), 413),
        (invite(*[f"X-H{i}: v" for i in range(MAX_HEADERS)]), 400),
        (invite("X-Long: " + "a" * 3000), 400),
        (invite().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (invite().replace(b"CSeq: 314159 INVITE", b"CSeq: 1 BYE"), 400),
        (invite().replace(b"Call-ID: a84b4c76e66710\r\n", b""), 400),
        (invite().replace(b"Content-Length: ", b"Content-Length: x"), 400),
        (b"\xff\xfe\r\n\r\n", 400),
        (b"no blank line", 400),
    ],
)
def test_what_breaks_the_rules_or_a_cap_is_refused_with_its_status(
    data: bytes, status: int
) -> None:
    with pytest.raises(SipError) as refused:
        parse(data)
    assert refused.value.status in (status, 0)


def test_the_parser_is_total_on_mangled_messages() -> None:
    rng = random.Random(14)
    good = invite()
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.choice(b':;,<>"\r\n =@\x00\xffSIP')
        cut = bytes(data[: rng.randrange(len(data) + 1)]) if rng.random() < 0.3 else bytes(data)
        with contextlib.suppress(SipError):
            parse(cut)


def test_via_name_addr_and_uri_user_read_what_the_gateway_acts_on() -> None:
    top = via("SIP/2.0/udp [2001:db8::1]:5070;branch=z9hG4bKa;rport;received=192.0.2.9")
    assert (top.transport, top.host, top.port) == ("UDP", "2001:db8::1", 5070)
    assert top.param("rport") == "" and top.param("received") == "192.0.2.9"
    assert top.param("maddr") is None
    assert name_addr('"A <b>, c" <sip:+1555@x;user=phone>;tag=9') == (
        "sip:+1555@x;user=phone",
        (("tag", "9"),),
    )
    assert tag_of("sip:a@b;tag=7") == "7" and tag_of("<sip:a@b") == ""
    assert uri_user("sip:+4930123@x") == "+4930123" and uri_user("tel:+4930123;p=1") == "+4930123"
    assert uri_user("sip:x.example") == "" and uri_user("http://a@b") == ""


def test_the_answer_takes_the_callers_first_g711_and_its_telephone_event_type() -> None:
    offer = sdp.offer(OFFER.encode())
    assert (offer.address, offer.port, offer.codec, offer.events) == ("198.51.100.7", 4000, 8, 97)
    answer = sdp.answer(offer, "192.0.2.1", 20000, 1).decode()
    assert "m=audio 20000 RTP/AVP 8 97\r\n" in answer
    assert "a=rtpmap:8 PCMA/8000" in answer and "a=rtpmap:97 telephone-event/8000" in answer
    assert "c=IN IP4 192.0.2.1" in answer and "a=recvonly" in answer


def test_other_streams_are_refused_in_place_and_a_dynamic_pcmu_is_understood() -> None:
    text = (
        OFFER.replace("m=audio", "m=video 5000 RTP/AVP 31\r\nm=audio").replace(
            "18 8 0 97", "111 97"
        )
        + "a=rtpmap:111 pcmu/8000\r\n"
    )
    offer = sdp.offer(text.encode())
    assert (offer.codec, offer.codec_name) == (111, "PCMU")
    answer = sdp.answer(offer, "192.0.2.1", 20000, 1).decode()
    assert answer.index("m=video 0 RTP/AVP 31") < answer.index("m=audio 20000 RTP/AVP 111 97")


@pytest.mark.parametrize(
    "body",
    [
        OFFER.replace("18 8 0 97", "18 97"),  # G.729 only
        OFFER.replace("RTP/AVP", "RTP/SAVP"),  # SRTP
        OFFER.replace("m=audio 4000", "m=audio 0"),  # the stream is off
        OFFER.replace("IN IP4 198.51.100.7", "IN IP4 gw.example"),
        "not sdp",
        "v=0\r\nm=audio x RTP/AVP 0\r\n",
    ],
)
def test_an_offer_without_usable_g711_is_refused_with_488(body: str) -> None:
    with pytest.raises(sdp.SdpError) as refused:
        sdp.offer(body.encode())
    assert refused.value.status == 488


def test_a_tcp_stream_is_cut_into_messages_by_content_length_whatever_the_reads() -> None:
    stream = b"\r\n\r\n" + invite() + invite().replace(b"314159", b"314160")
    for size in (1, 7, 100, len(stream)):
        framer = Framer()
        messages = [
            m for i in range(0, len(stream), size) for m in framer.feed(stream[i : i + size])
        ]
        assert [parse(m, stream=True).cseq()[0] for m in messages] == [314159, 314160]
        assert framer.pings == 1 and not framer.buffer


def test_a_tcp_stream_past_a_cap_or_without_a_length_is_refused() -> None:
    with pytest.raises(SipError, match="headers over"):
        Framer().feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 5000)
    with pytest.raises(SipError, match="message over"):
        Framer().feed(invite().replace(f"Content-Length: {len(OFFER)}".encode(), b"l: 99999"))
    with pytest.raises(SipError, match="Content-Length"):
        Framer().feed(invite().replace(f"Content-Length: {len(OFFER)}".encode(), b"X: 1"))


def test_the_digest_answer_is_rfc_2617s_own_example() -> None:
    params = challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert params is not None
    answer = digest(params, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in answer
    assert "nc=00000001" in answer and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in answer
    assert challenge('Basic realm="x"') is None and challenge("Digest qop=auth") is None
