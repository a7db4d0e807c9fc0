"""In-band DTMF from an RTP audio stream: G.711 packets in, key presses out, with the
stream's gaps told to the detector the way each really happened.

A pure core (no I/O, no clock) for a SIP gateway's RTP port: feed it every packet of
the call's audio (parsed by `rtp_events.parse_rtp`); it returns the keys the
`dtmf.DtmfDetector` confirms. What a network does to the stream reaches the detector
as what it is (RFC 3550 §5.1, RFC 3551 §4.1):

- a packet lost on the way (a gap in sequence numbers) is audio nobody heard:
  ``DtmfDetector.lost`` for as many samples as the timestamps skipped, so a held key
  is not split in two and a short tone that lost a frame can still be confirmed;
- a pause the sender chose (silence suppression: the sequence goes on, the
  timestamp jumps) is silence, fed as such (up to 200 ms: enough to end any press);
- a packet that comes late (behind one already fed) or twice is dropped: its slot
  was already accounted for.

Payload type 0 is PCMU (μ-law), 8 is PCMA (A-law), both 8000 Hz (RFC 3551 §6);
another payload type (telephone-events, comfort noise) is not audio here and is
ignored. Nothing raises: an empty payload is nothing.
"""

from __future__ import annotations

from typing import Final

from .dtmf import DtmfDetector
from .rtp_events import RtpPacket

PCMU: Final = 0  # RFC 3551 §6, Table 4
PCMA: Final = 8
_SEQUENCE: Final = 1 << 16
_TIMESTAMP: Final = 1 << 32
MAX_LOST_SAMPLES: Final = 8000  # one second: a longer gap is told as one second
MAX_SILENCE_SAMPLES: Final = 1600  # 200 ms of silence ends any press; more adds nothing


class RtpInband:
    """The keys heard in one RTP source's G.711 audio, each press once."""

    def __init__(self, detector: DtmfDetector | None = None) -> None:
        self.detector = detector if detector is not None else DtmfDetector()
        self._next_sequence: int | None = None
        self._next_timestamp = 0
        self.lost_packets = 0  # sequence numbers never seen
        self.dropped = 0  # late or repeated packets

    def feed(self, packet: RtpPacket) -> list[str]:
        """Take the next RTP packet of the call; return the keys it confirms."""
        if packet.payload_type not in (PCMU, PCMA) or not packet.payload:
            return []
        keys: list[str] = []
        if self._next_sequence is not None:
            ahead = (packet.sequence - self._next_sequence) % _SEQUENCE
            if ahead >= _SEQUENCE // 2:
                self.dropped += 1  # behind what was fed: late or a copy
                return []
            skipped = (packet.timestamp - self._next_timestamp) % _TIMESTAMP
            if skipped >= _TIMESTAMP // 2:
                skipped = 0  # a timestamp that went back: no gap to speak of
            if ahead:
                self.lost_packets += ahead
                keys += self.detector.lost(
                    min(skipped or ahead * len(packet.payload), MAX_LOST_SAMPLES)
                )
            elif skipped:
                keys += self.detector.feed_pcm(bytes(2 * min(skipped, MAX_SILENCE_SAMPLES)))
        self._next_sequence = (packet.sequence + 1) % _SEQUENCE
        self._next_timestamp = (packet.timestamp + len(packet.payload)) % _TIMESTAMP
        if packet.payload_type == PCMU:
            keys += self.detector.feed_ulaw(packet.payload)
        else:
            keys += self.detector.feed_alaw(packet.payload)
        return keys
