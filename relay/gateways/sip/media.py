"""One call's RTP, in: key presses from RFC 4733 telephone-events and from the tones in
its G.711 audio, each press once; and the call's liveness (when a packet last came).

Pure: the adapter hands it each datagram with its source and the time. Packets are
taken only from the caller's address: the first packet from the address the SDP
names (or the address the INVITE came from, for a caller behind NAT whose SDP says a
private address) fixes the source's address and port ("latching"); anything from
elsewhere is counted in `foreign` and dropped, so no one can inject keys into a call.

Out (the phone music, ``rtp_out.py``): `send` says whether the SDP lets us send, and
`destination` where: to the latched source once RTP came from the caller (symmetric
RTP: a caller behind NAT hears us where it speaks from), else the SDP's `peer`.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from ..dtmf import DtmfDetector, PressMerger
from ..rtp_events import TelephoneEventDecoder, parse_rtp

Address = tuple[str, int]
MAX_PACKET: Final = 1500
AUDIO_BATCH: Final = 2  # 20 ms packets per detector run: a tone is heard ≤ 20 ms later


def _alaw_table() -> NDArray[np.int16]:
    """G.711 A-law decoding: byte value → 16-bit linear sample (ITU-T G.711, as the
    reference g711.c computes it)."""
    table = np.zeros(256, dtype=np.int16)
    for code in range(256):
        value = code ^ 0x55
        magnitude = (value & 0x0F) << 4
        segment = (value & 0x70) >> 4
        if segment == 0:
            magnitude += 8
        else:
            magnitude = (magnitude + 0x108) << (segment - 1)
        table[code] = magnitude if value & 0x80 else -magnitude
    return table


ALAW_TO_PCM: Final[NDArray[np.int16]] = _alaw_table()


class CallMedia:
    """The RTP of one call. `feed` returns the keys pressed (new presses only)."""

    def __init__(
        self,
        *,
        codec: int,
        alaw: bool,
        events: int | None,
        expected: tuple[str, ...],
        inband: bool,
        now: float,
    ) -> None:
        self.codec = codec
        self.alaw = alaw  # PCMA, else PCMU
        self.decoder = TelephoneEventDecoder(events) if events is not None else None
        self.detector = DtmfDetector() if inband else None
        self.merger = PressMerger()
        self.expected = expected  # the addresses RTP may come from until it latches
        self.source: Address | None = None
        self.peer: Address | None = None  # where the caller's SDP says our RTP goes
        self.send = False  # the offer/answer lets us send (and we have music)
        self.caller_sends = True  # its SDP says it sends RTP (inactive or recvonly: not)
        self.last_packet = now  # the call's start counts as a packet
        self.packets = 0
        self.foreign = 0  # packets from anyone but the caller, dropped
        self.malformed = 0
        self._audio_waiting: list[bytes] = []

    def destination(self) -> Address | None:
        """Where our RTP goes now (None: nowhere: we do not send). A source port of 0
        cannot be answered (SIPp replays captures from it): the SDP's port then."""
        if not self.send:
            return None
        return self.source if self.source is not None and self.source[1] else self.peer

    def feed(self, data: bytes, source: Address, now: float) -> list[str]:
        if self.source is None:
            if source[0] not in self.expected:
                self.foreign += 1
                return []
            self.source = source
        elif source != self.source:
            self.foreign += 1
            return []
        if len(data) > MAX_PACKET:
            self.malformed += 1
            return []
        if len(data) > 12 and data[0] == 0x80 and data[1] & 0x7F == self.codec:
            # The common packet, audio with a plain 12-byte header, read without parse_rtp.
            self.packets += 1
            self.last_packet = now
            return self._audio(data[12:], now)
        rtp = parse_rtp(data)
        if rtp is None:
            self.malformed += 1
            return []
        self.packets += 1
        self.last_packet = now
        if self.decoder is not None and rtp.payload_type == self.decoder.payload_type:
            keys = self.decoder.feed(rtp)
            return [key for key in keys if self.merger.press("event", key, now)]
        if rtp.payload_type == self.codec:
            return self._audio(rtp.payload, now)
        return []

    def _audio(self, payload: bytes, now: float) -> list[str]:
        """Audio goes to the detector AUDIO_BATCH packets at a time (its cost is mostly
        per call, so 40 ms at once costs 60 % of two 20 ms calls)."""
        if self.detector is None:
            return []
        self._audio_waiting.append(payload)
        if len(self._audio_waiting) < AUDIO_BATCH:
            return []
        audio = b"".join(self._audio_waiting)
        self._audio_waiting.clear()
        if self.alaw:
            keys = self.detector.feed_pcm(ALAW_TO_PCM[np.frombuffer(audio, dtype=np.uint8)])
        else:
            keys = self.detector.feed_ulaw(audio)
        return [key for key in keys if self.merger.press("tone", key, now)]

    def flush(self, now: float) -> list[str]:
        """The call ends: a telephone-event whose end packets never came."""
        if self.decoder is None:
            return []
        return [key for key in self.decoder.flush() if self.merger.press("event", key, now)]
