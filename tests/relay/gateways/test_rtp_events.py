"""RFC 4733 telephone-events into key presses: on SIPp's own captures and on synthetic
streams (lost, reordered, repeated and malformed packets)."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.gateways.rtp_events import (
    RtpPacket,
    TelephoneEvent,
    TelephoneEventDecoder,
    parse_red,
    parse_rtp,
    parse_telephone_event,
    parse_telephone_events,
    telephone_event_payload_type,
)
from tests.relay.gateways.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
    UdpDatagram,
    iter_udp,
    read_udp,
)
from tests.services import service_unavailable

SIPP = Path("/usr/share/sip-tester")
HOW_TO_GET_SIPP = "apt-get install sip-tester (SIPp's RFC 2833 captures)"

# What each SIPp capture holds, read from the packets themselves (each file dumped
# packet by packet with struct; no tshark here): ten RTP packets, 192.168.0.3:49176 to
# 192.168.0.1:10000, payload type 101, SSRC 0x0E05384E, one RTP timestamp per file —
# the first with the marker bit and duration 0, six more every 320 units (40 ms), then
# the end packet (E=1, duration 2240 = 280 ms, volume 10) three times, all three with
# the same sequence number. One event each, so one key each.
SIPP_CAPTURES = {
    "dtmf_2833_0.pcap": "0",
    "dtmf_2833_1.pcap": "1",
    "dtmf_2833_2.pcap": "2",
    "dtmf_2833_3.pcap": "3",
    "dtmf_2833_4.pcap": "4",
    "dtmf_2833_5.pcap": "5",
    "dtmf_2833_6.pcap": "6",
    "dtmf_2833_7.pcap": "7",
    "dtmf_2833_8.pcap": "8",
    "dtmf_2833_9.pcap": "9",
    "dtmf_2833_star.pcap": "*",
    "dtmf_2833_pound.pcap": "#",
}
SIPP_SSRC = 0x0E05384E

# A realistic SIP offer (as from a softphone): audio with PCMU, PCMA and telephone-event
# on a dynamic payload type of 96 (SIPp's play_dtmf uses 96), plus a video section.
OFFER_PT_96 = """v=0\r
o=alice 2890844526 2890844526 IN IP4 198.51.100.7\r
s=-\r
c=IN IP4 198.51.100.7\r
t=0 0\r
m=audio 49170 RTP/AVP 0 8 96\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:96 telephone-event/8000\r
a=fmtp:96 0-15\r
a=ptime:20\r
a=sendrecv\r
m=video 51372 RTP/AVP 97 101\r
a=rtpmap:97 H264/90000\r
a=rtpmap:101 telephone-event/8000\r
"""


def sipp_capture(name: str) -> list[UdpDatagram]:
    path = SIPP / name
    if not path.exists():
        service_unavailable(f"{path} not found", HOW_TO_GET_SIPP)
    return read_udp(path)


def event_payload(event: int, *, end: bool = False, volume: int = 10, duration: int = 0) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def rtp(
    payload: bytes,
    *,
    timestamp: int,
    payload_type: int = 101,
    sequence: int = 0,
    ssrc: int = 0x1234,
    marker: bool = False,
) -> bytes:
    header = struct.pack(
        "!BBHII", 0x80, (0x80 if marker else 0) | payload_type, sequence, timestamp, ssrc
    )
    return header + payload


def press(
    event: int,
    timestamp: int,
    *,
    ssrc: int = 0x1234,
    payload_type: int = 101,
    updates: int = 3,
    step: int = 160,
) -> list[bytes]:
    """The packets of one key press as RFC 4733 §2.5.1 sends them: a first packet with
    the marker, updates, and the end packet three times (§2.5.1.4)."""
    packets = [
        rtp(
            event_payload(event, duration=n * step),
            timestamp=timestamp,
            payload_type=payload_type,
            ssrc=ssrc,
            marker=n == 0,
        )
        for n in range(updates)
    ]
    end = event_payload(event, end=True, duration=updates * step)
    packets += [
        rtp(end, timestamp=timestamp, payload_type=payload_type, ssrc=ssrc) for _ in range(3)
    ]
    return packets


def decode(decoder: TelephoneEventDecoder, packets: list[bytes]) -> list[str]:
    return [key for packet in packets for key in decoder.feed(packet)]


# -- SIPp's captures --


def test_every_sipp_dtmf_capture_has_an_expected_key() -> None:
    found = {path.name for path in SIPP.glob("dtmf_2833_*.pcap")}
    if not found:
        service_unavailable(f"no dtmf_2833_*.pcap in {SIPP}", HOW_TO_GET_SIPP)
    assert found == set(SIPP_CAPTURES), "a SIPp capture without an expectation, or one gone"


@pytest.mark.parametrize(("name", "key"), sorted(SIPP_CAPTURES.items()))
def test_each_sipp_capture_decodes_to_its_key_once(name: str, key: str) -> None:
    datagrams = sipp_capture(name)
    packets = [parse_rtp(datagram.payload) for datagram in datagrams]
    assert all(packet is not None for packet in packets)
    events = [parse_telephone_event(p.payload) for p in packets if p is not None]
    assert sum(1 for event in events if event is not None and event.end) == 3

    decoder = TelephoneEventDecoder(101)
    keys = [decoder.feed(datagram.payload) for datagram in datagrams]

    # Reported at the first of the three end packets (the 8th), never again.
    assert keys == [[]] * 7 + [[key]] + [[]] * 2
    assert decoder.malformed == 0
    assert decoder.ignored == 0


def test_a_sipp_capture_reports_at_its_first_packet_in_press_mode() -> None:
    decoder = TelephoneEventDecoder(101, report_on="press")
    keys = [decoder.feed(d.payload) for d in sipp_capture("dtmf_2833_5.pcap")]
    assert keys == [["5"]] + [[]] * 9


def test_a_sipp_capture_carries_what_was_read_from_it() -> None:
    packets = [parse_rtp(d.payload) for d in sipp_capture("dtmf_2833_star.pcap")]
    first, last = packets[0], packets[-1]
    assert first is not None and last is not None
    assert (first.marker, first.payload_type, first.ssrc) == (True, 101, SIPP_SSRC)
    assert first.timestamp == last.timestamp == 85760
    assert parse_telephone_event(first.payload) == TelephoneEvent(10, False, 10, 0)
    assert parse_telephone_event(last.payload) == TelephoneEvent(10, True, 10, 2240)


def test_all_sipp_captures_played_in_one_call_give_every_key_in_order() -> None:
    # They share an SSRC and each has its own timestamp, as one call dialling the keypad.
    order = "1234567890*#"
    names = {key: name for name, key in SIPP_CAPTURES.items()}
    decoder = TelephoneEventDecoder(101)
    keys: list[str] = []
    for key in order:
        keys += decode(decoder, [d.payload for d in sipp_capture(names[key])])
    assert "".join(keys) == order


def test_sipp_audio_capture_gives_no_key() -> None:
    # g711a.pcap: 236 packets of PCMA (payload type 8), a voice prompt.
    audio = [d.payload for d in sipp_capture("g711a.pcap")]
    decoder = TelephoneEventDecoder(101)
    assert decode(decoder, audio) == []
    assert decoder.ignored == len(audio) == 236
    assert decoder.malformed == 0


def test_audio_interleaved_with_a_sipp_press_still_gives_the_key_once() -> None:
    audio = [d.payload for d in sipp_capture("g711a.pcap")]
    dtmf = [d.payload for d in sipp_capture("dtmf_2833_7.pcap")]
    mixed = [packet for pair in zip(audio, dtmf, strict=False) for packet in pair]
    assert decode(TelephoneEventDecoder(101), mixed) == ["7"]


# -- the payload type comes from the SDP --


def test_payload_type_comes_from_the_sdp_audio_section() -> None:
    assert telephone_event_payload_type(OFFER_PT_96) == 96


def test_a_stream_on_the_offered_payload_type_decodes_and_101_is_then_ignored() -> None:
    payload_type = telephone_event_payload_type(OFFER_PT_96)
    assert payload_type is not None
    decoder = TelephoneEventDecoder(payload_type)

    sipp_101 = [d.payload for d in sipp_capture("dtmf_2833_3.pcap")]
    as_96 = [p[:1] + bytes([(p[1] & 0x80) | 96]) + p[2:] for p in sipp_101]

    assert decode(decoder, sipp_101) == []
    assert decoder.ignored == len(sipp_101)
    assert decode(decoder, as_96) == ["3"]
    assert decode(decoder, press(9, 50_000, payload_type=101)) == []
    assert decode(decoder, press(9, 50_000, payload_type=96)) == ["9"]


def test_sdp_without_telephone_event_gives_none() -> None:
    sdp = "v=0\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    assert telephone_event_payload_type(sdp) is None
    assert telephone_event_payload_type("") is None
    assert telephone_event_payload_type("garbage\nm=\na=rtpmap:x\na=rtpmap:\n") is None


def test_sdp_picks_the_active_audio_section_and_the_8000_clock() -> None:
    sdp = (
        "v=0\n"
        "m=video 5000 RTP/AVP 101\n"
        "a=rtpmap:101 telephone-event/8000\n"
        "m=audio 0 RTP/AVP 110\n"  # port 0: a rejected stream (RFC 3264)
        "a=rtpmap:110 telephone-event/8000\n"
        "m=audio 6000 UDP/TLS/RTP/SAVPF 111 126 110\n"
        "a=rtpmap:111 opus/48000/2\n"
        "a=rtpmap:110 TELEPHONE-EVENT/48000\n"
        "a=rtpmap:126 Telephone-Event/8000\n"
        "a=rtpmap:127 telephone-event/8000\n"  # not in the m= line's formats
    )
    assert telephone_event_payload_type(sdp) == 126
    assert telephone_event_payload_type(sdp, clock_rate=48000) == 110


def test_an_sdp_fragment_without_media_lines_is_read_whole() -> None:
    assert telephone_event_payload_type("a=rtpmap:98 telephone-event/8000") == 98


# -- synthetic streams --


def test_volume_and_duration_are_parsed() -> None:
    assert parse_telephone_event(bytes([11, 0x80 | 0x40 | 63, 0xFF, 0xFF])) == TelephoneEvent(
        event=11, end=True, volume=63, duration=0xFFFF
    )  # the reserved R bit (0x40) is ignored
    event = parse_telephone_event(event_payload(15, volume=7, duration=800))
    assert event == TelephoneEvent(event=15, end=False, volume=7, duration=800)
    assert event.key == "D"
    assert TelephoneEvent(16, False, 0, 0).key is None  # 16: flash, not a key


def test_an_end_packet_alone_counts_when_the_start_packets_were_lost() -> None:
    packets = press(4, 8000)
    assert decode(TelephoneEventDecoder(101), packets[3:]) == ["4"]
    assert decode(TelephoneEventDecoder(101), packets[-1:]) == ["4"]
    assert decode(TelephoneEventDecoder(101, report_on="press"), packets[-1:]) == ["4"]


def test_reordered_packets_count_each_press_once_in_order_of_completion() -> None:
    first, second = press(1, 1000), press(2, 3000)
    # The second press starts before the first one's end packets arrive.
    stream = first[:2] + second[:2] + first[2:] + second[2:]
    assert decode(TelephoneEventDecoder(101), stream) == ["1", "2"]
    shuffled = first + second
    random.Random(4733).shuffle(shuffled)
    assert sorted(decode(TelephoneEventDecoder(101), shuffled)) == ["1", "2"]


def test_the_same_key_pressed_again_counts_again() -> None:
    stream = press(5, 1000) + press(5, 2000) + press(5, 3000)
    assert decode(TelephoneEventDecoder(101), stream) == ["5", "5", "5"]
    assert decode(TelephoneEventDecoder(101, report_on="press"), stream) == ["5", "5", "5"]


def test_retransmitted_packets_count_once() -> None:
    packets = press(8, 1000)
    assert decode(TelephoneEventDecoder(101), packets * 3) == ["8"]


def test_two_sources_interleaved_keep_their_presses_apart() -> None:
    # Same key, same timestamp, two SSRCs (a conference bridge, two legs): two presses.
    alice, bob = press(3, 1000, ssrc=0xA), press(3, 1000, ssrc=0xB)
    alice += press(6, 2000, ssrc=0xA)
    bob += press(9, 2000, ssrc=0xB)
    stream = [packet for pair in zip(alice, bob, strict=True) for packet in pair]
    assert decode(TelephoneEventDecoder(101), stream) == ["3", "3", "6", "9"]


def test_a_press_whose_end_packets_were_all_lost_ends_at_the_next_press() -> None:
    lost_end = press(2, 1000)[:3]
    decoder = TelephoneEventDecoder(101)
    assert decode(decoder, lost_end) == []
    assert decode(decoder, press(7, 2000)) == ["2", "7"]
    assert decode(decoder, lost_end) == []  # a late copy changes nothing


def test_a_press_whose_end_packets_were_all_lost_is_reported_after_a_quiet_timeout() -> None:
    decoder = TelephoneEventDecoder(101, end_timeout_s=0.3)
    packets = press(2, 1000)
    arrivals = [decoder.feed(packet, now=0.05 * n) for n, packet in enumerate(packets[:3])]
    assert arrivals == [[], [], []]
    assert decoder.expire(0.39) == []  # 0.29 s after the last update: still held
    assert decoder.expire(0.40) == ["2"]
    assert decoder.expire(5.0) == []
    assert decode(decoder, packets[3:]) == []  # late end packets change nothing
    assert decoder.flush() == []


def test_a_held_key_updated_every_50_ms_never_times_out() -> None:
    decoder = TelephoneEventDecoder(101, end_timeout_s=0.3)
    held = [rtp(event_payload(9, duration=400 * n), timestamp=8000) for n in range(100)]
    for n, packet in enumerate(held):
        assert decoder.feed(packet, now=0.05 * n) == []
        assert decoder.expire(0.05 * n + 0.2) == []
    end = rtp(event_payload(9, end=True, duration=40_000), timestamp=8000)
    assert decoder.feed(end, now=5.0) == ["9"]


def test_audio_again_after_a_press_with_lost_end_packets_ends_it() -> None:
    decoder = TelephoneEventDecoder(101, end_timeout_s=0.3)
    assert decode(decoder, press(6, 1000)[:3]) == []  # durations up to 320, then lost
    during = rtp(b"\xff" * 160, timestamp=1000 + 320 + 2400, payload_type=0)
    assert decoder.feed(during) == []  # within the timeout of the last update
    after = rtp(b"\xff" * 160, timestamp=1000 + 320 + 2401, payload_type=0)
    assert decoder.feed(after) == ["6"]
    assert decoder.feed(after) == []
    assert decoder.ignored == 3


def test_the_same_key_again_where_a_press_with_lost_end_packets_stopped_is_two_presses() -> None:
    # The first "5" reports durations 0, 160, 320 and its end packets are lost; the
    # second "5" starts at exactly 1000 + 320, where the first stopped.
    first, second = press(5, 1000)[:3], press(5, 1000 + 320)
    assert decode(TelephoneEventDecoder(101), first + second) == ["5", "5"]
    # Without its marker packet (RFC 4733 §2.2.2) too: only a segment that ran to the
    # duration field's limit is continued (§2.5.1.3).
    assert decode(TelephoneEventDecoder(101), first + second[1:]) == ["5", "5"]
    assert decode(TelephoneEventDecoder(101, report_on="press"), first + second) == ["5", "5"]


def test_a_new_segment_carrying_the_marker_is_a_new_press() -> None:
    # §2.2.2: the marker bit begins a new event; a continuation segment never has it.
    segment_1 = [rtp(event_payload(1, duration=d), timestamp=0) for d in (0, 0xFFFF)]
    again = [rtp(event_payload(1, duration=0), timestamp=0xFFFF, marker=True)]
    again += [rtp(event_payload(1, end=True, duration=800), timestamp=0xFFFF)] * 3
    assert decode(TelephoneEventDecoder(101), segment_1 + again) == ["1", "1"]


def test_flush_ends_a_press_still_open_when_the_call_ends() -> None:
    decoder = TelephoneEventDecoder(101)
    assert decode(decoder, press(0, 1000)[:2]) == []
    assert decoder.flush() == ["0"]
    assert decoder.flush() == []
    pressing = TelephoneEventDecoder(101, report_on="press")
    assert decode(pressing, press(0, 1000)[:2]) == ["0"]
    assert pressing.flush() == []


def test_a_long_press_split_into_segments_counts_once() -> None:
    # RFC 4733 §2.5.1.3: past 0xFFFF units (8.2 s at 8 kHz) the sender starts a new
    # segment, with a new timestamp, where the previous one ended; only the last ends.
    segment_1 = [rtp(event_payload(1, duration=d), timestamp=0) for d in (0, 40_000, 0xFFFF)]
    segment_2 = [rtp(event_payload(1, duration=d), timestamp=0xFFFF) for d in (0, 8000)]
    final = [rtp(event_payload(1, end=True, duration=9000), timestamp=0xFFFF)] * 3
    stream = segment_1 + segment_2 + final
    assert decode(TelephoneEventDecoder(101), stream) == ["1"]
    assert decode(TelephoneEventDecoder(101, report_on="press"), stream) == ["1"]


def test_timestamps_wrapping_past_2_to_the_32_still_order_presses() -> None:
    stream = press(1, 0xFFFF_FF00)[:2] + press(2, 0x100)
    assert decode(TelephoneEventDecoder(101), stream) == ["1", "2"]


def test_events_packed_into_one_packet_each_count_once() -> None:
    # RFC 4733 §2.5.1.5: the timestamp is the first event's start; the next starts
    # where the previous one's duration ends.
    packed = event_payload(1, end=True, duration=800) + event_payload(2, end=True, duration=800)
    assert [e.event for e in parse_telephone_events(packed + b"\x00")] == [1, 2]
    decoder = TelephoneEventDecoder(101)
    assert decoder.feed(rtp(packed, timestamp=1000)) == ["1", "2"]
    # The second event alone, later, at its own start: the same press.
    assert decoder.feed(rtp(event_payload(2, end=True, duration=800), timestamp=1800)) == []


def test_redundant_rfc_2198_payloads_fold_into_the_same_presses() -> None:
    def red(primary: bytes, redundant: bytes, offset: int) -> bytes:
        header = struct.pack("!I", (0x80 | 101) << 24 | offset << 10 | len(redundant))
        return header + bytes([101]) + redundant + primary

    decoder = TelephoneEventDecoder(101, red_payload_type=100)
    start = red(event_payload(4, duration=160), b"", 0)
    end = event_payload(4, end=True, duration=480)
    # The end packet was lost; the next packet (the key 5 starting 640 units later)
    # carries it as its redundant block.
    next_key = red(event_payload(5, duration=0), end, 640)
    assert decoder.feed(rtp(start, payload_type=100, timestamp=1000)) == []
    assert decoder.feed(rtp(next_key, payload_type=100, timestamp=1640)) == ["4"]
    assert decoder.feed(rtp(end, payload_type=101, timestamp=1000)) == []  # a plain copy
    assert parse_red(b"\x80\x00") is None
    assert parse_red(bytes([0x80 | 101, 0, 0, 10, 101])) is None  # block past the end


def test_memory_stays_bounded_after_100000_presses() -> None:
    decoder = TelephoneEventDecoder(101, memory=256, max_sources=64)
    count = 0
    for n in range(100_000):
        end = rtp(event_payload(n % 16, end=True, duration=800), timestamp=n * 1600, ssrc=n % 97)
        count += len(decoder.feed(end))
    assert count == 100_000
    assert decoder.remembered <= 256 + 64


def test_malformed_and_short_packets_never_raise() -> None:
    decoder = TelephoneEventDecoder(101)
    valid = press(1, 1000)[-1]
    cases = [b"", b"\x80", valid[:11], valid[:12], valid[:15], b"\x00" * 16, b"\xff" * 16]
    cases += [valid[:n] for n in range(len(valid))]
    rng = random.Random(2833)
    cases += [rng.randbytes(rng.randrange(0, 40)) for _ in range(5000)]
    cases += [bytes([0x80, 101]) + rng.randbytes(rng.randrange(0, 30)) for _ in range(5000)]
    for case in cases:
        decoder.feed(case)
        parse_rtp(case)
        parse_telephone_event(case)
        parse_telephone_events(case)
        parse_red(case)
    assert decoder.malformed > 0
    assert decode(TelephoneEventDecoder(101), [valid[:15], valid[:12]]) == []


# -- RTP header parsing (RFC 3550 §5.1) --


def test_rtp_header_fields_csrcs_extension_and_padding() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80 | 96, 65535, 4_000_000_000, 7)
    csrcs = struct.pack("!II", 11, 12)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xff\x00\x00"
    payload = event_payload(9, end=True, volume=20, duration=1234)
    packet = parse_rtp(header + csrcs + extension + payload + b"\x00\x00\x03")
    assert packet == RtpPacket(
        version=2,
        padding=True,
        extension=True,
        marker=True,
        payload_type=96,
        sequence=65535,
        timestamp=4_000_000_000,
        ssrc=7,
        csrcs=(11, 12),
        payload=payload,
    )


@pytest.mark.parametrize(
    "packet",
    [
        b"\x40\x65" + bytes(14),  # version 1
        b"\x8f\x65" + bytes(14),  # 15 CSRCs announced, none there
        b"\x90\x65" + bytes(10) + b"\xbe\xde\x00\x05",  # extension longer than the packet
        b"\xa0\x65" + bytes(14) + b"\x00",  # padding count 0
        b"\xa0\x65" + bytes(10) + b"\x09",  # padding longer than the payload
        b"\x80\xc8" + bytes(26),  # RTCP sender report on the same port (RFC 5761)
    ],
)
def test_malformed_rtp_is_none(packet: bytes) -> None:
    assert parse_rtp(packet) is None


# -- the test pcap reader --


def _pcap(frames: list[bytes], linktype: int, *, order: str, magic: int) -> bytes:
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for n, frame in enumerate(frames):
        out += struct.pack(order + "IIII", 1_700_000_000 + n, 500, len(frame), len(frame))
        out += frame
    return out


def _udp(payload: bytes, sport: int = 5004, dport: int = 6000) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _ipv4(segment: bytes) -> bytes:
    addresses = bytes([10, 0, 0, 1, 10, 0, 0, 2])
    return (
        struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(segment), 1, 0, 64, 17, 0) + addresses + segment
    )


def _ipv6(segment: bytes) -> bytes:
    addresses = bytes(15) + b"\x01" + bytes(15) + b"\x02"  # ::1 to ::2
    return struct.pack("!IHBB", 0x60000000, len(segment), 17, 64) + addresses + segment


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (LINKTYPE_ETHERNET, lambda ip, kind: bytes(12) + kind + ip),
        (LINKTYPE_ETHERNET, lambda ip, kind: bytes(12) + b"\x81\x00\x00\x05" + kind + ip),
        (LINKTYPE_LINUX_SLL, lambda ip, kind: bytes(14) + kind + ip),
        (LINKTYPE_RAW, lambda ip, kind: ip),
        (LINKTYPE_IPV4, lambda ip, kind: ip),
    ],
)
@pytest.mark.parametrize(("order", "magic"), [("<", 0xA1B2C3D4), (">", 0xA1B23C4D)])
def test_pcap_reader_finds_udp_in_each_link_type_and_byte_order(
    linktype: int, wrap: Callable[[bytes, bytes], bytes], order: str, magic: int
) -> None:
    frames = [wrap(_ipv4(_udp(b"four")), b"\x08\x00")]
    if linktype != LINKTYPE_IPV4:
        frames.append(wrap(_ipv6(_udp(b"six", 7000, 8000)), b"\x86\xdd"))
    datagrams = list(iter_udp(_pcap(frames, linktype, order=order, magic=magic)))
    assert datagrams[0].payload == b"four"
    first = datagrams[0]
    assert (first.src, first.src_port, first.dst, first.dst_port) == (
        "10.0.0.1",
        5004,
        "10.0.0.2",
        6000,
    )
    fraction = 500e-6 if magic == 0xA1B2C3D4 else 500e-9
    assert first.time == pytest.approx(1_700_000_000 + fraction)
    if linktype != LINKTYPE_IPV4:
        second = datagrams[1]
        assert (second.payload, second.src, second.dst_port) == (b"six", "::1", 8000)
    truncated = _pcap(frames, linktype, order=order, magic=magic)[:-3]
    assert len(list(iter_udp(truncated))) == len(frames) - 1
