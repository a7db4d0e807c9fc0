"""The SIP gateway's side of the phone music, without I/O: the SDP says whether and
where we send (RFC 3264 §6.1: only where the caller takes media, and only when the
relay has music), re-INVITEs put a call on hold and back, and our RTP goes where the
caller's RTP comes from once it came (symmetric RTP). The real adapter against SIPp
is test_sip_music_sipp.py; the packets themselves, test_sip_rtp_out.py."""

from __future__ import annotations

import pytest

from relay.gateways.sip import sdp
from relay.gateways.sip.message import tag_of
from relay.gateways.sip.ua import UserAgent

from .sip_messages import CARRIER, OFFER, agent, in_dialog, invite, sent

RTP_FROM = ("198.51.100.7", 4000)  # the offer's c= and m=
SILENCE = bytes([0x80, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9]) + b"\xd5" * 160  # PCMA


def offer_with(direction: str = "", session: str = "", address: str = "198.51.100.7") -> str:
    text = OFFER.replace("c=IN IP4 198.51.100.7", f"c=IN IP4 {address}")
    if session:
        text = text.replace("t=0 0\r\n", f"t=0 0\r\na={session}\r\n")
    return text + (f"a={direction}\r\n" if direction else "")


def direction_of(body: bytes) -> str:
    (found,) = [line[2:] for line in body.decode().splitlines() if line[2:] in sdp.DIRECTIONS]
    return found


@pytest.mark.parametrize(
    ("offered", "music", "answered"),
    [
        (offer_with(), True, "sendrecv"),
        (offer_with(), False, "recvonly"),
        (offer_with("sendrecv"), True, "sendrecv"),
        (offer_with("sendonly"), True, "recvonly"),  # the caller holds us: we listen
        (offer_with("recvonly"), True, "sendonly"),
        (offer_with("recvonly"), False, "inactive"),  # §6.1: never recvonly to recvonly
        (offer_with("inactive"), True, "inactive"),
        (offer_with(address="0.0.0.0"), True, "recvonly"),  # RFC 2543's hold
        (offer_with(session="sendonly"), True, "recvonly"),  # the session's attribute
        (offer_with("sendrecv", session="sendonly"), True, "sendrecv"),  # the medium's wins
    ],
)
def test_the_answer_sends_only_where_the_offer_receives_and_the_relay_has_music(
    offered: str, music: bool, answered: str
) -> None:
    found = sdp.offer(offered.encode())
    assert direction_of(sdp.answer(found, "192.0.2.1", 20000, 7, send=music)) == answered


def test_our_own_offer_sends_and_receives_only_when_the_relay_has_music() -> None:
    assert direction_of(sdp.our_offer("192.0.2.1", 20000, 7, send=True)) == "sendrecv"
    assert direction_of(sdp.our_offer("192.0.2.1", 20000, 7)) == "recvonly"


def call(ua: UserAgent, body: str = OFFER) -> tuple[str, str, bytes]:
    """A call answered and acknowledged: its key, our tag, our answer."""
    ok = sent(ua.receive(invite(body=body), CARRIER, 0.0))[-1]
    tag = tag_of(ok.get("to"))
    ua.receive(in_dialog("ACK", tag), CARRIER, 0.0)
    return next(iter(ua.calls)), tag, ok.body


def reinvite(tag: str, body: str, cseq: int) -> bytes:
    text = invite(body=body).decode()
    text = text.replace("To: <sip:jam@192.0.2.1>", f"To: <sip:jam@192.0.2.1>;tag={tag}")
    text = text.replace("CSeq: 314159 INVITE", f"CSeq: {cseq} INVITE")
    return text.replace("z9hG4bK776asdhds", f"z9hG4bKre{cseq}").encode()


def test_with_music_our_rtp_goes_to_the_sdps_address_until_the_callers_rtp_comes() -> None:
    ua, _ = agent(music=True)
    key, _, answer = call(ua)
    assert direction_of(answer) == "sendrecv"
    media = ua.calls[key].media
    assert media.destination() == RTP_FROM
    ua.rtp(key, SILENCE, ("203.0.113.5", 4000), 0.1)  # from anyone else: ignored
    assert media.destination() == RTP_FROM
    ua.rtp(key, SILENCE, ("198.51.100.7", 61000), 0.1)  # the caller, through a NAT
    assert media.destination() == ("198.51.100.7", 61000)


def test_a_source_port_of_0_cannot_be_answered_so_the_sdps_port_stays() -> None:
    ua, _ = agent(music=True)
    key, _, _ = call(ua)
    ua.rtp(key, SILENCE, ("198.51.100.7", 0), 0.1)
    assert ua.calls[key].media.destination() == RTP_FROM


def test_without_music_nothing_is_sent() -> None:
    ua, _ = agent()
    key, _, answer = call(ua)
    assert direction_of(answer) == "recvonly" and ua.calls[key].media.destination() is None


def test_a_reinvite_on_hold_stops_our_rtp_and_one_off_hold_starts_it_again() -> None:
    ua, _ = agent(music=True)
    key, tag, first = call(ua)
    media = ua.calls[key].media
    held = sent(ua.receive(reinvite(tag, offer_with("sendonly"), 2), CARRIER, 1.0))[-1]
    assert held.status == 200 and held.get("content-type") == "application/sdp"
    assert direction_of(held.body) == "recvonly" and media.destination() is None
    back = sent(ua.receive(reinvite(tag, offer_with(), 3), CARRIER, 2.0))[-1]
    assert direction_of(back.body) == "sendrecv" and media.destination() == RTP_FROM
    refresh = sent(ua.receive(reinvite(tag, offer_with(), 4), CARRIER, 3.0))[-1]
    versions = [origin(body) for body in (first, held.body, back.body, refresh.body)]
    assert [v - versions[0] for v in versions] == [0, 1, 2, 2]  # §8: changed, then not


def origin(body: bytes) -> int:
    (line,) = [line for line in body.decode().splitlines() if line.startswith("o=")]
    return int(line.split()[2])


def test_a_reinvite_to_a_new_address_moves_our_rtp_there_and_latches_again() -> None:
    ua, _ = agent(music=True)
    key, tag, _ = call(ua)
    media = ua.calls[key].media
    ua.rtp(key, SILENCE, ("198.51.100.7", 61000), 0.1)
    moved = offer_with(address="198.51.100.8").replace("m=audio 4000", "m=audio 5000")
    ok = sent(ua.receive(reinvite(tag, moved, 2), CARRIER, 1.0))[-1]
    assert ok.status == 200 and media.destination() == ("198.51.100.8", 5000)
    ua.rtp(key, SILENCE, ("198.51.100.8", 62000), 1.1)
    assert media.destination() == ("198.51.100.8", 62000)


def test_a_reinvite_we_cannot_answer_gets_488_and_the_call_goes_on_as_it_was() -> None:
    ua, _ = agent(music=True)
    key, tag, first = call(ua)
    refused = sent(ua.receive(reinvite(tag, offer_with().replace(" 8 0 97", ""), 2), CARRIER, 1))
    assert refused[-1].status == 488
    assert ua.calls[key].answer == first and ua.calls[key].media.destination() == RTP_FROM


@pytest.mark.parametrize(("their", "destination"), [("recvonly", RTP_FROM), ("sendonly", None)])
def test_a_late_offers_answer_in_the_ack_says_whether_we_send(
    their: str, destination: tuple[str, int] | None
) -> None:
    ua, _ = agent(music=True)
    ok = sent(ua.receive(invite(body=""), CARRIER, 0.0))[-1]
    assert direction_of(ok.body) == "sendrecv"
    answer = offer_with(their).replace("18 8 0 97", "0")
    ack = in_dialog("ACK", tag_of(ok.get("to"))).replace(
        b"Content-Length: 0",
        f"Content-Type: application/sdp\r\nContent-Length: {len(answer)}".encode(),
    )
    ua.receive(ack + answer.encode(), CARRIER, 0.1)
    media = next(iter(ua.calls.values())).media
    assert media.destination() == destination and (media.codec, media.alaw) == (0, False)


def test_a_call_on_hold_that_sends_nothing_is_not_hung_up_for_its_silence() -> None:
    ua, _ = agent(music=True, silence_s=30.0)
    key, tag, _ = call(ua)
    ua.receive(reinvite(tag, offer_with("inactive"), 2), CARRIER, 1.0)
    assert [m.method for m in sent(ua.poll(100.0))] == []  # 99 s without RTP: on hold
    ua.receive(reinvite(tag, offer_with(), 3), CARRIER, 100.0)  # off hold, still silent
    assert [m.method for m in sent(ua.poll(125.0))] == []
    assert [m.method for m in sent(ua.poll(131.0))] == ["BYE"] and key not in ua.calls
