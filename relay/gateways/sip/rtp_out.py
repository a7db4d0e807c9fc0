"""One call's RTP, out: the show's phone mix as RTP packets (RFC 3550 §5.1) in the
call's G.711 codec, one every 20 ms tick of the relay's phone clock.

Pure: the adapter calls `RtpSender.packet` once per tick with that tick's 160 bytes of
μ-law (``relay/phone_feed.py``), or None when there is nothing to play, and sends what
it returns. Each sender has its own random SSRC and random initial sequence number
and timestamp (§5.1: "random", so a stream cannot be guessed); the timestamp moves on
160 every tick, played or not, so the far end's clock stays true through a gap, and
the first packet after a gap (and the very first) carries the marker bit (RFC 3551
§4.1: the start of a talkspurt). PCMA calls get the μ-law converted to A-law by a
256-entry table (ITU-T G.711's two laws, through the 16-bit linear sample).
"""

from __future__ import annotations

import secrets
import struct
from typing import Final

import numpy as np
from numpy.typing import NDArray

from ..dtmf import ULAW_TO_PCM

FRAME_SAMPLES: Final = 160  # 20 ms at 8 kHz
PCMU: Final = 0
PCMA: Final = 8
_HEADER: Final = struct.Struct("!BBHII")
_A_SEGMENT_ENDS: Final = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def alaw_encode_sample(sample: int) -> int:
    """One 16-bit linear sample as an A-law byte (ITU-T G.711, as the reference g711.c
    `linear2alaw` computes it)."""
    value = sample >> 3  # 13 bits
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((s for s, end in enumerate(_A_SEGMENT_ENDS) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (value >> 1 if segment < 2 else value >> segment) & 0x0F
    return code ^ mask


def _ulaw_to_alaw() -> NDArray[np.uint8]:
    return np.array([alaw_encode_sample(int(s)) for s in ULAW_TO_PCM], dtype=np.uint8)


ULAW_TO_ALAW: Final[NDArray[np.uint8]] = _ulaw_to_alaw()
_TRANSLATE: Final = ULAW_TO_ALAW.tobytes()  # for bytes.translate: no array per packet


def ulaw_to_alaw(ulaw: bytes) -> bytes:
    """μ-law bytes as the same audio in A-law."""
    return ulaw.translate(_TRANSLATE)


class RtpSender:
    """The packets of one outgoing RTP stream of 20 ms G.711 frames: `payload_type`
    as negotiated (PCMU 0, PCMA 8, or a dynamic type mapped to either), `alaw` whether
    it is PCMA (by default: payload type 8). Both may change between packets (a
    re-INVITE); the stream goes on."""

    __slots__ = ("_gap", "alaw", "payload_type", "sent", "sequence", "skipped", "ssrc", "timestamp")

    def __init__(
        self,
        payload_type: int = PCMU,
        alaw: bool | None = None,
        *,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        if not 0 <= payload_type <= 127:
            raise ValueError(f"payload type {payload_type} is not 0-127")
        self.payload_type = payload_type  # the negotiated one: 0, 8, or a dynamic type
        self.alaw = payload_type == PCMA if alaw is None else alaw  # PCMA, else PCMU
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.sequence = secrets.randbits(16) if sequence is None else sequence
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp
        self._gap = True  # the first packet starts a talkspurt
        self.sent = 0
        self.skipped = 0  # ticks with nothing sent

    def packet(self, ulaw: bytes | None) -> bytes | None:
        """The packet for this tick's frame (160 bytes of μ-law), or None: nothing to
        send this tick (the timestamp moves on all the same)."""
        if ulaw is None or len(ulaw) != FRAME_SAMPLES:
            self.skip()
            return None
        payload = ulaw.translate(_TRANSLATE) if self.alaw else ulaw
        marker = 0x80 if self._gap else 0
        head = _HEADER.pack(
            0x80, marker | self.payload_type, self.sequence, self.timestamp, self.ssrc
        )
        self._gap = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        self.sent += 1
        return head + payload

    def skip(self) -> None:
        """A tick with nothing sent: 20 ms of the stream's clock pass; the next packet
        is marked as a talkspurt's start."""
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        self._gap = True
        self.skipped += 1
