"""A SIP call's RTP out, without I/O: the phone mix's μ-law frames as RFC 3550 packets
in the call's codec, a packet a tick, the clock moving on through gaps."""

from __future__ import annotations

import numpy as np
import pytest

from relay.gateways.dtmf import ULAW_TO_PCM
from relay.gateways.rtp_events import parse_rtp
from relay.gateways.sip.media import ALAW_TO_PCM
from relay.gateways.sip.rtp_out import (
    PCMA,
    PCMU,
    RtpSender,
    alaw_encode_sample,
    ulaw_to_alaw,
)

FRAME = bytes(range(160))


def test_a_frame_becomes_a_version_2_packet_with_our_ssrc_sequence_and_timestamp() -> None:
    sender = RtpSender(PCMU, ssrc=0xDEADBEEF, sequence=7, timestamp=1000)
    packet = sender.packet(FRAME)
    assert packet is not None
    rtp = parse_rtp(packet)
    assert rtp is not None
    assert (rtp.version, rtp.payload_type, rtp.ssrc) == (2, 0, 0xDEADBEEF)
    assert (rtp.sequence, rtp.timestamp, rtp.marker) == (7, 1000, True)
    assert not rtp.padding and not rtp.extension and rtp.csrcs == ()
    assert rtp.payload == FRAME and len(packet) == 12 + 160


def test_each_tick_adds_one_to_the_sequence_and_160_to_the_timestamp_wrapping() -> None:
    sender = RtpSender(PCMU, ssrc=1, sequence=0xFFFE, timestamp=0xFFFFFF00)
    parsed = [parse_rtp(sender.packet(FRAME) or b"") for _ in range(4)]
    assert [p.sequence for p in parsed if p] == [0xFFFE, 0xFFFF, 0, 1]
    assert [p.timestamp for p in parsed if p] == [0xFFFFFF00, 0xFFFFFFA0, 0x40, 0xE0]
    assert [p.marker for p in parsed if p] == [True, False, False, False]


def test_a_tick_with_nothing_to_play_sends_nothing_but_the_clock_moves_and_marks_the_next() -> None:
    sender = RtpSender(PCMA, ssrc=5, sequence=100, timestamp=0)
    first = parse_rtp(sender.packet(FRAME) or b"")
    assert sender.packet(None) is None and sender.packet(None) is None
    after = parse_rtp(sender.packet(FRAME) or b"")
    assert first is not None and after is not None
    assert after.sequence == first.sequence + 1  # sequence numbers count packets sent
    assert after.timestamp == first.timestamp + 3 * 160  # the timestamp counts time
    assert after.marker and after.payload_type == PCMA
    assert (sender.sent, sender.skipped) == (2, 2)
    assert sender.packet(b"short") is None  # not a 20 ms frame: nothing sent


def test_two_senders_choose_their_own_random_ssrc_sequence_and_timestamp() -> None:
    a, b = RtpSender(PCMU), RtpSender(PCMU)
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)


def test_a_dynamic_payload_type_is_sent_as_negotiated_in_its_law() -> None:
    sender = RtpSender(96, alaw=True, ssrc=1, sequence=0, timestamp=0)
    rtp = parse_rtp(sender.packet(FRAME) or b"")
    assert rtp is not None and rtp.payload_type == 96 and rtp.payload == ulaw_to_alaw(FRAME)
    with pytest.raises(ValueError, match="0-127"):
        RtpSender(128)


def test_the_a_law_encoder_is_the_inverse_of_g711s_decoder_for_every_code() -> None:
    assert [alaw_encode_sample(int(ALAW_TO_PCM[code])) for code in range(256)] == list(range(256))
    assert alaw_encode_sample(0) == 0xD5 and alaw_encode_sample(-1) == 0x55
    assert alaw_encode_sample(32767) == 0xAA and alaw_encode_sample(-32768) == 0x2A


def test_mu_law_becomes_a_law_of_the_same_sound_within_a_laws_step() -> None:
    codes = bytes(range(256))
    linear = ULAW_TO_PCM.astype(np.int32)
    through = ALAW_TO_PCM[np.frombuffer(ulaw_to_alaw(codes), dtype=np.uint8)].astype(np.int32)
    # A-law's step is 16 up to 512 and doubles each segment: 1/16 of the level above.
    step = np.maximum(16, np.abs(linear) // 16)
    assert np.all(np.abs(through - linear) <= step)
    sender = RtpSender(PCMA, ssrc=1, sequence=0, timestamp=0)
    packet = sender.packet(codes[:160])
    assert packet is not None and packet[12:] == ulaw_to_alaw(codes[:160])
