"""RTP out, pure: the RFC 3550 header of each 20 ms frame a gateway sends, read back by
the receiving side's own parser (relay/gateways/rtp_events.py)."""

from __future__ import annotations

import pytest

from relay.gateways.rtp_events import parse_rtp
from relay.gateways.rtp_out import PCMU, RtpOut

FRAME = bytes(range(160))


def test_a_packet_is_version_2_pcmu_with_the_streams_ssrc_seq_and_timestamp() -> None:
    rtp = RtpOut(ssrc=0xDEADBEEF, seq=1000, timestamp=123456)
    packet = parse_rtp(rtp.packet(FRAME))
    assert packet is not None
    assert (packet.version, packet.payload_type, packet.ssrc) == (2, PCMU, 0xDEADBEEF)
    assert (packet.sequence, packet.timestamp, packet.payload) == (1000, 123456, FRAME)
    assert not (packet.padding or packet.extension or packet.csrcs)


def test_each_packet_is_one_on_in_sequence_and_160_samples_on_in_time() -> None:
    rtp = RtpOut(ssrc=7, seq=10, timestamp=0)
    packets = [parse_rtp(rtp.packet(FRAME)) for _ in range(5)]
    assert [p.sequence for p in packets if p] == [10, 11, 12, 13, 14]
    assert [p.timestamp for p in packets if p] == [0, 160, 320, 480, 640]
    assert rtp.sent == 5


def test_only_the_first_packet_of_a_talkspurt_is_marked() -> None:
    """The stream's first packet and the first after ticks with nothing to send."""
    rtp = RtpOut(ssrc=7, seq=0, timestamp=0)
    first, second = parse_rtp(rtp.packet(FRAME)), parse_rtp(rtp.packet(FRAME))
    rtp.skip()
    rtp.skip()
    resumed, after = parse_rtp(rtp.packet(FRAME)), parse_rtp(rtp.packet(FRAME))
    assert first and second and resumed and after
    assert [first.marker, second.marker, resumed.marker, after.marker] == [
        True,
        False,
        True,
        False,
    ]
    # The silence took time but no sequence numbers: the receiver sees no loss.
    assert resumed.sequence == second.sequence + 1
    assert resumed.timestamp == second.timestamp + 3 * 160
    assert rtp.skipped == 2


def test_sequence_and_timestamp_wrap_around() -> None:
    rtp = RtpOut(ssrc=2**32 + 5, seq=65535, timestamp=2**32 - 100)
    a, b = parse_rtp(rtp.packet(FRAME)), parse_rtp(rtp.packet(FRAME))
    assert a and b and a.ssrc == 5
    assert (a.sequence, b.sequence) == (65535, 0)
    assert (a.timestamp, b.timestamp) == (2**32 - 100, 60)


def test_a_payload_type_outside_7_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="payload type"):
        RtpOut(ssrc=1, seq=0, timestamp=0, payload_type=128)
