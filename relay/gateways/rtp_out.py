"""RTP out, pure: the 12-byte RFC 3550 header on each 20 ms frame a gateway sends, and
the state that header carries from one packet to the next. No sockets, no clock.

- Version 2, no padding, no extension, no CSRC; the payload type is the call's
  (0: PCMU, G.711 μ-law at 8 kHz, RFC 3551 §6).
- The SSRC, the first sequence number and the first timestamp are random (RFC 3550
  §5.1: "SHOULD be random", so that a new stream is not taken for the old one's
  replay); the caller of `RtpOut` draws them and may give its own in a test.
- The sequence number goes up by one per packet sent; the timestamp by the samples of
  every tick, sent or not (`skip`: nothing to play), so the receiver's clock keeps
  step with ours through a silence; the marker bit is set on the first packet of a
  talkspurt — the first of the stream and the first after a skip (RFC 3551 §4.1).

What comes in is read by `relay.gateways.rtp_events.parse_rtp`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

PCMU: Final = 0
HEADER: Final = struct.Struct("!BBHII")
SAMPLES_PER_FRAME: Final = 160  # 20 ms at 8 kHz
_V2: Final = 0x80


@dataclass(slots=True)
class RtpOut:
    """One RTP stream's sending state; `packet(payload)` is the next packet."""

    ssrc: int
    seq: int
    timestamp: int
    payload_type: int = PCMU
    samples: int = SAMPLES_PER_FRAME  # per tick
    sent: int = 0
    skipped: int = 0
    _talkspurt: bool = True  # the next packet starts one

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type < 128:
            raise ValueError(f"payload type {self.payload_type} is not 0..127")
        self.ssrc %= 2**32
        self.seq %= 2**16
        self.timestamp %= 2**32

    def packet(self, payload: bytes) -> bytes:
        """This tick's packet of `payload`; the state moves on to the next tick."""
        marker = 0x80 if self._talkspurt else 0
        head = HEADER.pack(_V2, marker | self.payload_type, self.seq, self.timestamp, self.ssrc)
        self._talkspurt = False
        self.seq = (self.seq + 1) % 2**16
        self.timestamp = (self.timestamp + self.samples) % 2**32
        self.sent += 1
        return head + payload

    def skip(self) -> None:
        """A tick with nothing to send: time goes on, the next packet is marked."""
        self.timestamp = (self.timestamp + self.samples) % 2**32
        self._talkspurt = True
        self.skipped += 1


__all__ = ["HEADER", "PCMU", "SAMPLES_PER_FRAME", "RtpOut"]
