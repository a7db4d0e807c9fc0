"""The SIP user agent server without I/O: messages and the time in, what it sends and
which callers join, press and leave out (RFC 3261 §13, §15, §17, §18; RFC 3581). The
clock is the test's: every timer is checked at the moment the RFC names. The real
adapter against SIPp is test_sip_sipp.py."""

from __future__ import annotations

import struct

from relay.contract.privacy import pseudonym
from relay.gateways.sip.message import parse, tag_of
from relay.gateways.sip.timers import T1, T2, TIMEOUT, Ended, Pressed, Send, Started
from relay.gateways.sip.ua import UserAgent

from .sip_messages import CARRIER, KEY, OFFER, agent, in_dialog, invite, sent, statuses


def answered(ua: UserAgent, now: float = 0.0) -> tuple[str, str]:
    """A call answered and acknowledged: its key and our tag."""
    actions = ua.receive(invite(), CARRIER, now)
    (started,) = [a for a in actions if isinstance(a, Started)]
    tag = tag_of(sent(actions)[-1].get("to"))
    ua.receive(in_dialog("ACK", tag), CARRIER, now)
    return started.key, tag


def test_an_invite_is_answered_100_then_200_with_our_sdp_and_the_caller_joins() -> None:
    ua, ports = agent()
    actions = ua.receive(invite("Record-Route: <sip:proxy.example;lr>"), CARRIER, 0.0)
    trying, ok = sent(actions)
    assert (trying.status, ok.status) == (100, 200)
    assert tag_of(trying.get("to")) == "" and tag_of(ok.get("to"))
    assert ok.all("record-route") == ["<sip:proxy.example;lr>"]
    assert b"m=audio 20000 RTP/AVP 8 97" in ok.body and ok.get("content-type") == "application/sdp"
    (started,) = [a for a in actions if isinstance(a, Started)]
    assert started.caller == pseudonym("+4930123456", KEY) and started.display == "…56"
    assert ports == [20000]


def test_responses_go_to_the_source_address_and_with_rport_to_its_port() -> None:
    ua, _ = agent()
    nat = ("198.51.100.99", 40123)  # the Via says 198.51.100.7:5060
    actions = ua.receive(invite(), nat, 0.0)
    assert {a.to for a in actions if isinstance(a, Send)} == {nat}
    top = sent(actions)[0].all("via")[0]
    assert "received=198.51.100.99" in top and "rport=40123" in top
    plain = invite().replace(b";rport", b"").replace(b"z9hG4bK776", b"z9hG4bK777")
    plain = plain.replace(b"a84b4c76e66710", b"other-call")
    actions = ua.receive(plain, nat, 0.0)
    assert {a.to for a in actions if isinstance(a, Send)} == {("198.51.100.99", 5060)}


def test_the_200_is_sent_again_at_t1_doubling_to_t2_until_the_ack() -> None:
    ua, _ = agent()
    tag = tag_of(sent(ua.receive(invite(), CARRIER, 0.0))[-1].get("to"))
    times = []
    now = 0.0
    while now < 12.0:
        now = ua.next_deadline() or 99.0
        if statuses(ua.poll(now)) == [200]:
            times.append(now)
    assert times == [T1, 3 * T1, 7 * T1, 7 * T1 + T2, 7 * T1 + 2 * T2]
    assert ua.receive(in_dialog("ACK", tag), CARRIER, now) == []
    assert statuses(ua.poll(now + 10.0)) == []


def test_no_ack_in_64_t1_ends_the_call_with_our_bye_and_the_caller_leaves() -> None:
    ua, _ = agent()
    ua.receive(invite(), CARRIER, 0.0)
    actions = ua.poll(TIMEOUT)
    (bye,) = [m for m in sent(actions) if m.method == "BYE"]
    assert bye.uri == "sip:gw@198.51.100.7"
    (ended,) = [a for a in actions if isinstance(a, Ended)]
    assert (ended.started, ended.reason, ended.rtp_port) == (True, "timeout", 20000)
    assert not ua.calls


def test_a_retransmitted_request_is_answered_from_the_cache() -> None:
    ua, _ = agent()
    first = sent(ua.receive(invite(), CARRIER, 0.0))[-1]
    again = ua.receive(invite(), CARRIER, 0.2)
    assert [a for a in again if isinstance(a, Started)] == []
    assert sent(again)[0].get("to") == first.get("to") and ua.counts["retransmitted"] == 1


def test_bye_from_the_caller_is_answered_and_they_leave_once() -> None:
    ua, _ = agent()
    key, tag = answered(ua)
    actions = ua.receive(in_dialog("BYE", tag), CARRIER, 5.0)
    assert statuses(actions) == [200]
    assert [a for a in actions if isinstance(a, Ended)] == [
        Ended(key, ua_caller(), True, "hangup", 20000)
    ]
    assert statuses(ua.receive(in_dialog("BYE", tag), CARRIER, 5.5)) == [200]  # from the cache
    assert statuses(ua.receive(in_dialog("BYE", tag, branch="z9hG4bKnew"), CARRIER, 6)) == [481]


def ua_caller() -> str:
    return pseudonym("+4930123456", KEY)


def test_requests_in_unknown_dialogs_get_481_and_options_200() -> None:
    ua, _ = agent()
    assert statuses(ua.receive(in_dialog("BYE", "nope"), CARRIER, 0.0)) == [481]
    assert statuses(ua.receive(in_dialog("INFO", "nope", branch="z9hG4bKi"), CARRIER, 0.0)) == [481]
    options = in_dialog("OPTIONS", "", branch="z9hG4bKo").replace(b";tag=\r\n", b"\r\n")
    (reply,) = sent(ua.receive(options, CARRIER, 0.0))
    assert reply.status == 200 and "INVITE" in (reply.get("allow") or "")
    register = in_dialog("REGISTER", "", branch="z9hG4bKr").replace(b";tag=\r\n", b"\r\n")
    assert statuses(ua.receive(register, CARRIER, 0.0)) == [405]


def test_cancel_while_ringing_gets_200_and_the_invite_487_sent_again_until_acked() -> None:
    ua, _ports = agent(answer_after_s=5.0)
    assert statuses(ua.receive(invite(), CARRIER, 0.0)) == [100, 180]
    cancel = (
        invite().replace(b"INVITE sip", b"CANCEL sip").replace(b"314159 INVITE", b"314159 CANCEL")
    )
    actions = ua.receive(cancel, CARRIER, 1.0)
    assert statuses(actions) == [200, 487]
    assert next(a for a in actions if isinstance(a, Ended)).started is False
    assert statuses(ua.poll(1.0 + T1)) == [487]  # timer G
    ack = invite().replace(b"INVITE sip", b"ACK sip").replace(b"314159 INVITE", b"314159 ACK")
    ua.receive(ack, CARRIER, 1.6)
    assert statuses(ua.poll(10.0)) == []  # never answered: the ring timer finds it over
    assert not ua.calls


def test_no_common_codec_is_488_and_no_free_port_or_too_many_calls_503_or_486() -> None:
    ua, _ = agent(max_calls=1)
    g729 = invite(body=OFFER.replace("18 8 0 97", "18")).replace(b"z9hG4bK776", b"z9hG4bK1")
    g729 = g729.replace(b"a84b4c76e66710", b"call-1")
    assert statuses(ua.receive(g729, CARRIER, 0.0)) == [488]
    answered(ua)
    second = invite().replace(b"a84b4c76e66710", b"call-2").replace(b"z9hG4bK776", b"z9hG4bK2")
    assert statuses(ua.receive(second, CARRIER, 0.0)) == [486]


def test_a_source_outside_the_allow_list_gets_403_or_silence() -> None:
    ua, ports = agent()
    assert statuses(ua.receive(invite(), ("203.0.113.5", 5060), 0.0)) == [403]
    ua.refuse = "drop"
    assert ua.receive(invite(), ("203.0.113.5", 5060), 0.0) == []
    assert ports == [] and ua.counts["forbidden"] == 2


def test_our_bye_follows_the_route_set_and_is_sent_again_until_answered() -> None:
    ua, _ = agent()
    actions = ua.receive(
        invite("Record-Route: <sip:198.51.100.1:5070;lr>, <sip:198.51.100.2;lr>"), CARRIER, 0.0
    )
    tag = tag_of(sent(actions)[-1].get("to"))
    ua.receive(in_dialog("ACK", tag), CARRIER, 0.1)
    key = next(iter(ua.calls))
    actions = ua.hang_up(key, 1.0)
    (bye,) = [a for a in actions if isinstance(a, Send)]
    message = parse(bye.data)
    assert bye.to == ("198.51.100.1", 5070)
    assert message.all("route") == ["<sip:198.51.100.1:5070;lr>", "<sip:198.51.100.2;lr>"]
    assert tag_of(message.get("from")) == tag and tag_of(message.get("to")) == "1928301774"
    assert [a.reason for a in actions if isinstance(a, Ended)] == ["closed"]
    assert [m.method for m in sent(ua.poll(1.0 + T1))] == ["BYE"]  # timer E
    ok = f"SIP/2.0 200 OK\r\nVia: {message.get('via')}\r\nFrom: {message.get('from')}\r\n"
    ok += f"To: {message.get('to')}\r\nCall-ID: {message.get('call-id')}\r\nCSeq: 1 BYE\r\n\r\n"
    ua.receive(ok.encode(), CARRIER, 1.7)
    assert not ua.client and sent(ua.poll(30.0)) == []


def test_a_hang_up_before_the_ack_waits_for_it() -> None:
    ua, _ = agent()
    tag = tag_of(sent(ua.receive(invite(), CARRIER, 0.0))[-1].get("to"))
    key = next(iter(ua.calls))
    assert ua.hang_up(key, 0.1, "hangup") == []  # §15: no BYE before the ACK
    actions = ua.receive(in_dialog("ACK", tag), CARRIER, 0.2)
    assert [m.method for m in sent(actions)] == ["BYE"]
    # The caller leaves with the reason the hang-up gave (the operator's end_calls: hangup).
    assert [a.reason for a in actions if isinstance(a, Ended)] == ["hangup"]


def rtp(payload_type: int, seq: int, timestamp: int, payload: bytes, marker: bool = False) -> bytes:
    return (
        struct.pack("!BBHII", 0x80, payload_type | (0x80 if marker else 0), seq, timestamp, 7)
        + payload
    )


def test_rtp_events_count_once_and_only_from_the_callers_address() -> None:
    ua, _ = agent()
    key, _ = answered(ua)
    source = ("198.51.100.7", 4000)
    packets = [rtp(97, 1, 800, bytes([5, 10, 0, 160]), True)] + [
        rtp(97, 2 + n, 800, bytes([5, 0x8A, 3, 32])) for n in range(3)
    ]
    once = [Pressed(key, ua_caller(), "5")]
    assert ua.rtp(key, rtp(97, 1, 1600, bytes([9, 0x8A, 3, 32])), ("203.0.113.9", 4000), 1.0) == []
    pressed = [a for p in packets for a in ua.rtp(key, p, source, 1.0)]
    assert pressed == once
    assert ua.rtp(key, rtp(97, 9, 2400, bytes([7, 0x8A, 3, 32])), ("198.51.100.7", 4002), 1.1) == []
    assert ua.calls[key].media.foreign == 2


def test_info_keys_count_and_a_silent_or_overlong_call_is_hung_up() -> None:
    ua, _ = agent(silence_s=10.0, max_call_s=100.0)
    _key, tag = answered(ua)
    info = (
        in_dialog("INFO", tag, branch="z9hG4bKinfo").replace(
            b"Content-Length: 0", b"Content-Type: application/dtmf-relay\r\nContent-Length: 22"
        )
        + b"Signal=#\r\nDuration=160"
    )
    actions = ua.receive(info, CARRIER, 1.0)
    assert (
        statuses(actions) == [200]
        and next(a for a in actions if isinstance(a, Pressed)).digit == "#"
    )
    quiet = [a for t in range(1, 13) for a in ua.poll(float(t))]
    assert [a.reason for a in quiet if isinstance(a, Ended)] == ["timeout"]
    ua2, _ = agent(silence_s=10.0, max_call_s=5.0)
    key2, _ = answered(ua2)
    for t in range(1, 8):
        ua2.rtp(key2, rtp(8, t, t * 160, b"\xd5" * 160), ("198.51.100.7", 4000), float(t))
        ended = [a for a in ua2.poll(float(t)) if isinstance(a, Ended)]
        if ended:
            break
    assert ended and ended[0].reason == "timeout" and t == 6


def test_an_anonymous_caller_gets_a_pseudonym_of_the_call_and_privacy_hides_the_digits() -> None:
    ua, _ = agent()
    anonymous = invite().replace(
        b"sip:+4930123456@carrier.example", b"sip:anonymous@anonymous.invalid"
    )
    (started,) = [a for a in ua.receive(anonymous, CARRIER, 0.0) if isinstance(a, Started)]
    assert started.display is None and started.caller.startswith("c-")
    hidden = (
        invite("P-Asserted-Identity: <tel:+4930999888>", "Privacy: id")
        .replace(b"sip:+4930123456@carrier.example", b"sip:anonymous@anonymous.invalid")
        .replace(b"a84b4c76e66710", b"call-3")
        .replace(b"z9hG4bK776", b"z9hG4bK3")
    )
    (started,) = [a for a in ua.receive(hidden, CARRIER, 0.0) if isinstance(a, Started)]
    assert started.caller == pseudonym("+4930999888", KEY) and started.display is None


def test_shutdown_ends_every_call_and_refuses_new_ones() -> None:
    ua, _ = agent()
    answered(ua)
    actions = ua.end_all(1.0)
    assert [m.method for m in sent(actions)] == ["BYE"]
    assert [a.reason for a in actions if isinstance(a, Ended)] == ["closed"]
    second = invite().replace(b"a84b4c76e66710", b"call-2").replace(b"z9hG4bK776", b"z9hG4bK2")
    assert statuses(ua.receive(second, CARRIER, 1.0)) == [503]


def test_an_invite_without_sdp_gets_our_offer_and_the_acks_answer_sets_the_media() -> None:
    ua, _ = agent()
    actions = ua.receive(invite(body=""), CARRIER, 0.0)
    ok = sent(actions)[-1]
    assert ok.status == 200 and b"m=audio 20000 RTP/AVP 0 8 101" in ok.body
    answer = OFFER.replace("18 8 0 97", "8 101").replace("rtpmap:97", "rtpmap:101")
    ack = (
        in_dialog("ACK", tag_of(ok.get("to"))).replace(
            b"Content-Length: 0",
            f"Content-Type: application/sdp\r\nContent-Length: {len(answer)}".encode(),
        )
        + answer.encode()
    )
    assert ua.receive(ack, CARRIER, 0.1) == []
    key = next(iter(ua.calls))
    media = ua.calls[key].media
    assert (media.codec, media.alaw, media.decoder and media.decoder.payload_type) == (8, True, 101)
    end = rtp(101, 1, 800, bytes([3, 0x8A, 3, 32]))
    assert ua.rtp(key, end, ("198.51.100.7", 4000), 0.2) == [Pressed(key, ua_caller(), "3")]


def test_a_late_offer_whose_ack_brings_no_usable_answer_is_ended_with_a_bye() -> None:
    ua, _ = agent()
    ok = sent(ua.receive(invite(body=""), CARRIER, 0.0))[-1]
    actions = ua.receive(in_dialog("ACK", tag_of(ok.get("to"))), CARRIER, 0.1)
    assert [m.method for m in sent(actions)] == ["BYE"]
    assert [a.reason for a in actions if isinstance(a, Ended)] == ["closed"] and not ua.calls
