"""In-band DTMF: key presses heard in a call's audio, for streams that carry no DTMF events.

A pure core (numpy only, no I/O, no clock): feed it the call's audio as the stream
delivers it (20 ms of 8 kHz μ-law or PCM at a time) and it returns the keys pressed,
each press once. It never raises on bad input: an empty or odd-sized chunk, silence,
clipping or garbage gives no digit, never an exception.

The limits are ITU-T Q.23 (the frequencies, https://www.itu.int/rec/T-REC-Q.23) and
Q.24 (the receiver, https://www.itu.int/rec/T-REC-Q.24), as Asterisk's ``main/dsp.c``
applies them (``ast_dtmf_detect_init`` and ``dtmf_detect``):

- rows 697, 770, 852, 941 Hz; columns 1209, 1336, 1477, 1633 Hz (Q.23 §2);
- a tone of ≥ 40 ms is accepted, < 20 ms rejected (Q.24 §4.4, ETSI ES 201 235-3);
  a pause of ≥ 40 ms separates two presses;
- a frequency within ±1.5 % is accepted, beyond ±3.5 % rejected (Q.24 §4.2.1);
- twist: the low (row) tone may be up to 8 dB louder than the high (column) tone
  ("normal" twist), the high tone up to 4 dB louder than the low ("reverse").

How: Goertzel on 102-sample blocks (12.75 ms, Asterisk's DTMF_GSIZE; with it the
neighbouring rows fall near the response's nulls), computed for every block of a
chunk and all 8 frequencies at once as one matrix product. Each block is a *hit* when

1. one row and one column stand out: each ≥ 8 dB above the other bins of its group
   (Asterisk's DTMF_RELATIVE_PEAK_ROW/COL);
2. both tones reach a minimum level (−40 dBm0 each);
3. the twist is within 9 dB normal / 5 dB reverse (Q.24's 8 and 4 dB with a decibel
   of margin: a block measures twist to about ±½ dB);
4. the two tones hold most (70 %) of the block's energy above 400 Hz (speech and
   music spread theirs: Asterisk's DTMF_TO_TOTAL_ENERGY; below 400 Hz lie pink
   noise, hum and a voice's fundamental, never a DTMF tone);
5. each tone is as strong in the block's first half as in its second (within 4 dB):
   a tone that fills only part of the block, or swells and fades as speech does, is
   no hit;
6. each tone's frequency, measured from the phase turn between the block's two
   halves, is within ±2.5 % of nominal: the midpoint between Q.24's must-accept 1.5 %
   and must-reject 3.5 %. A 102-sample Goertzel bin is 78 Hz wide, so its level alone
   cannot tell 1633 Hz + 1.5 % from + 4 %; the phase can, to a few hertz.

A press begins after two consecutive hits of the same key (a 20 ms tone holds at
most one whole block, a 40 ms tone always two) and is reported then, once: two
blocks of the fixed grid, or — sooner, once the grid's latest block is a hit — the
two blocks that end with the audio fed so far. The two blocks must also be *pure*
together (relay/gateways/talkoff.py): between 300 and 3,400 Hz, more than 100 Hz
from both tones, no third tone within 10 dB of the weaker one, and no peak within
20 dB of it that stands 26.5 dB above the band's floor (its quietest fifth). Speech
is harmonic: when two of a voice's harmonics land on a row and a column, its other
harmonics lie between and around them, out of deep valleys; noise has no such
peaks. A pair that is not pure leaves the run going, and the next hit's pair is
asked again. A press ends after three consecutive blocks without its key (≈ 38 ms
of pause); a shorter dropout inside a held key does not make a second press. Audio
lost on the way (`DtmfDetector.lost`) is neither tone nor pause: a held key goes on
through it, and one hit beside it confirms a press (with no pair to ask: talk-off is
not checked there).

Key-down to report, measured by bench/dtmf_margins.py on 20 ms frames: median
33.6 ms, p99 42.5 ms (was 39.2 and 53.5 with the grid alone). The floor is near
30 ms: more than 20 ms of tone must be heard (Q.24 refuses shorter), and a frame's
audio arrives only when the whole frame does (10 ms later on average).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relay.gateways.talkoff import pure_pair

SAMPLE_RATE: Final = 8000
CHUNK_SAMPLES: Final = 160  # 20 ms at 8 kHz: what Twilio Media Streams and RTP carry
ROWS_HZ: Final = (697.0, 770.0, 852.0, 941.0)  # Q.23: the low group
COLUMNS_HZ: Final = (1209.0, 1336.0, 1477.0, 1633.0)  # Q.23: the high group
KEYS: Final = ("1", "2", "3", "A", "4", "5", "6", "B", "7", "8", "9", "C", "*", "0", "#", "D")

# -- G.711 μ-law --

_ULAW_BIAS: Final = 0x84  # G.711: 33 in 14-bit units, 132 in 16-bit
_ULAW_CLIP: Final = 32635  # the largest magnitude that still fits once biased


def _ulaw_table() -> NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF  # G.711 sends every bit inverted
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


ULAW_TO_PCM: Final[NDArray[np.int16]] = _ulaw_table()
"""G.711 μ-law decoding: byte value → 16-bit linear sample (±32124 at most)."""
_ULAW_TO_FLOAT: Final[NDArray[np.float64]] = ULAW_TO_PCM.astype(np.float64)
# The segment (exponent) of a biased magnitude, looked up by its bits 7..14.
_SEGMENT: Final[NDArray[np.int32]] = np.concatenate(
    [np.zeros(1, np.int32)] + [np.full(1 << e, e, np.int32) for e in range(8)]
)[:256]


def ulaw_decode(data: bytes | bytearray | memoryview) -> NDArray[np.int16]:
    """G.711 μ-law bytes → 16-bit linear samples (one sample per byte)."""
    return ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(samples: ArrayLike) -> bytes:
    """16-bit linear samples (ints, or floats on the int16 scale) → G.711 μ-law bytes.

    Out-of-range values are clipped and NaN counts as silence. Decoding gives back each
    sample within half a quantisation step (the decoder returns the step's midpoint).
    """
    values = np.nan_to_num(np.asarray(samples, dtype=np.float64).ravel())
    linear = np.clip(np.rint(values), -32768, 32767).astype(np.int32)
    sign = np.where(linear < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(linear), _ULAW_CLIP) + _ULAW_BIAS
    exponent = _SEGMENT[magnitude >> 7]
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes: NDArray[np.int32] = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return codes.astype(np.uint8).tobytes()


# -- G.711 A-law (the other codec a SIP trunk offers) --


def _alaw_table() -> NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0x55  # G.711 inverts the even bits
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


ALAW_TO_PCM: Final[NDArray[np.int16]] = _alaw_table()
"""G.711 A-law decoding: byte value → 16-bit linear sample (±32256 at most)."""
_ALAW_TO_FLOAT: Final[NDArray[np.float64]] = ALAW_TO_PCM.astype(np.float64)


def alaw_decode(data: bytes | bytearray | memoryview) -> NDArray[np.int16]:
    """G.711 A-law bytes → 16-bit linear samples (one sample per byte)."""
    return ALAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


# -- test tones --

DBM0_AMPLITUDE: Final = 22657.0
"""The peak of a 0 dBm0 sine on the int16 scale (G.711 μ-law: 3.17 dB below full scale)."""


def dtmf_tone(
    key: str,
    duration_ms: float,
    *,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    row_offset: float = 0.0,
    column_offset: float = 0.0,
    rate: int = SAMPLE_RATE,
) -> NDArray[np.float64]:
    """The two-tone signal of `key` (int16 scale), as a phone would send it.

    `level_dbm0` is the row (low) tone's level; the column (high) tone is `twist_db`
    lower (positive: normal twist; negative: reverse). The offsets are relative
    frequency errors (0.015 = +1.5 %). An unknown key gives silence.
    """
    n = max(0, round(duration_ms * rate / 1000))
    if key not in KEYS:
        return np.zeros(n)
    index = KEYS.index(key)
    low = ROWS_HZ[index // 4] * (1.0 + row_offset)
    high = COLUMNS_HZ[index % 4] * (1.0 + column_offset)
    amplitude = DBM0_AMPLITUDE * 10.0 ** (level_dbm0 / 20.0)
    t = np.arange(n) / rate
    tone: NDArray[np.float64] = amplitude * (
        np.sin(2 * np.pi * low * t) + 10.0 ** (-twist_db / 20.0) * np.sin(2 * np.pi * high * t)
    )
    return tone


# -- the detector --


def _pure(pair: NDArray[np.float64], key: str) -> bool:
    """Whether two blocks where `key` was heard hold its two tones and no third."""
    index = KEYS.index(key)
    return pure_pair(pair, ROWS_HZ[index // 4], COLUMNS_HZ[index % 4])


BLOCK: Final = 102  # Asterisk's DTMF_GSIZE: 12.75 ms at 8 kHz
_HALF: Final = BLOCK // 2
_FREQUENCIES: Final = ROWS_HZ + COLUMNS_HZ
_LOW_BINS: Final = 5  # DFT bins 1–5 of a block: 78–392 Hz, well below the lowest row


def _goertzel_basis() -> NDArray[np.float64]:
    """(102, 48): cos and sin of each frequency over the whole block, then over each
    half of it under a Hann window.

    Columns: [cos, whole (8)] [sin, whole] [cos, first half] [sin, first half] [cos,
    second half] [sin, second half]. The whole block gives the Goertzel (DFT) levels,
    whose nulls fall on the neighbouring rows. The halves' phase runs on from one half
    to the next, so the turn between them measures frequency; the window keeps the
    other tone's leakage (up to 8 dB louder) out of that measure.
    """
    n = np.arange(BLOCK)[:, None]
    omega = 2 * np.pi * np.array(_FREQUENCIES)[None, :] / SAMPLE_RATE
    window = np.hanning(_HALF + 2)[1:-1, None]
    first = np.zeros((BLOCK, 1))
    first[:_HALF] = window
    second = np.zeros((BLOCK, 1))
    second[_HALF:] = window
    cos, sin = np.cos(omega * n), np.sin(omega * n)
    return np.ascontiguousarray(
        np.concatenate([cos, sin, cos * first, sin * first, cos * second, sin * second], axis=1)
    )


def _low_band_basis() -> NDArray[np.float64]:
    """(102, 11): a block's DFT at 0 Hz and at bins 1–5 (cos, sin): below 400 Hz,
    where no DTMF tone lies. Computed only for blocks that pass the cheaper checks."""
    n = np.arange(BLOCK)[:, None]
    low = 2 * np.pi * np.arange(1, _LOW_BINS + 1)[None, :] / BLOCK * n
    return np.ascontiguousarray(
        np.concatenate([np.ones((BLOCK, 1)), np.cos(low), np.sin(low)], axis=1)
    )


_BASIS: Final = _goertzel_basis()
_LOW_BASIS: Final = _low_band_basis()

NORMAL_TWIST_DB: Final = 9.0
"""Q.24: the row (low) tone may be up to 8 dB louder; one more decibel of margin, as a
block's measured twist scatters by ±½ dB around the true one (μ-law, noise, where the
tone starts), so a tone at exactly 8 dB is accepted (at 10 dB it is still rejected)."""
REVERSE_TWIST_DB: Final = 5.0
"""Q.24: the column (high) tone up to 4 dB louder, with the same margin."""
NORMAL_TWIST: Final = 10.0 ** (NORMAL_TWIST_DB / 10.0)
REVERSE_TWIST: Final = 10.0 ** (REVERSE_TWIST_DB / 10.0)
RELATIVE_PEAK: Final = 10.0 ** (8.0 / 10.0)  # Asterisk: DTMF_RELATIVE_PEAK_ROW/COL, 8 dB
MIN_LEVEL_DBM0: Final = -40.0  # each tone
_MIN_POWER: Final = (BLOCK * DBM0_AMPLITUDE * 10.0 ** (MIN_LEVEL_DBM0 / 20.0) / 2.0) ** 2
TONE_SHARE: Final = 0.70
"""The least share of a block's energy above 400 Hz the two tones must hold
(Asterisk's DTMF_TO_TOTAL_ENERGY of 42/51 is 0.82 of all of it; lower here so that
tones 1.5 % off in the 78 Hz-wide bins and tones in white noise at 6 dB SNR still
pass: the frequency check rejects what this lets through). The energy below 400 Hz
is left out: pink noise, hum and a voice's fundamental put most of theirs there, and
no DTMF tone does. Measured on the corpus of relay/rehearsal/dtmf_corpus.py: tone
blocks in noise hold ≥ 0.7 (1st percentile), while the voices and music that come
near a key hold 0.6–0.75 and are refused (7 false digits at 0.6, 3 at 0.7, 1 at 0.75,
where white noise at 6 dB SNR starts to lose 40 ms tones)."""
FREQUENCY_TOLERANCE: Final = 0.025  # between Q.24's accept (1.5 %) and reject (3.5 %)
STEADY: Final = 0.4
"""A tone's power in one half of a block against the other's, at least (−4 dB): a
block the tone fills less than 84 of 102 samples of is no hit, so two blocks' hits
take ≥ 21 ms of tone (< 20 ms is rejected whatever the alignment); noise at 6 dB SNR
still passes, and speech rarely holds this steady."""
HITS_TO_BEGIN: Final = 2  # Asterisk's DTMF_HITS_TO_BEGIN: ≥ 25.5 ms of tone
MISSES_TO_END: Final = 3  # Asterisk's DTMF_MISSES_TO_END: ≈ 38 ms of pause

# The share is measured against the energy a pure tone puts into its own bin:
# |X|² = (N/2)·Σx² for a sine filling the N-sample block.
_SHARE_SCALE: Final = TONE_SHARE * BLOCK / 2.0
# The phase turn between the halves' centres (51 samples apart) of a tone f·(1 + e)
# is 2π·f·e·51/8000: the largest turn each frequency may show.
_MAX_TURN: Final = tuple(
    2 * math.pi * f * FREQUENCY_TOLERANCE * _HALF / SAMPLE_RATE for f in _FREQUENCIES
)


def _steady_and_in_tune(halves: Sequence[float], bin_: int) -> bool:
    """Whether bin `bin_`'s tone fills both halves of the block alike (within 4 dB)
    and its phase turns between them no more than the frequency tolerance allows."""
    cos_a, sin_a = halves[bin_], halves[8 + bin_]
    cos_b, sin_b = halves[16 + bin_], halves[24 + bin_]
    power_a, power_b = cos_a * cos_a + sin_a * sin_a, cos_b * cos_b + sin_b * sin_b
    if power_a < STEADY * power_b or power_b < STEADY * power_a:
        return False
    # arg(X_b · conj(X_a)) with X = Σ x·cos − j·Σ x·sin
    turn = math.atan2(sin_a * cos_b - cos_a * sin_b, cos_a * cos_b + sin_a * sin_b)
    return abs(turn) <= _MAX_TURN[bin_]


class DtmfDetector:
    """Finds the keys pressed in one call's audio, fed as the stream delivers it.

    ``feed_ulaw(chunk)`` / ``feed_pcm(chunk)`` take the next stretch of the call at
    8 kHz (any length; 20 ms is what streams deliver) and return the keys whose press
    was confirmed in it, in order: each press once, when it has lasted long enough.
    State carries across chunks, so a tone may span any number of them. One detector
    per call; it is not thread-safe.
    """

    def __init__(self) -> None:
        self._rest: NDArray[np.float64] = np.zeros(0)  # samples short of a whole block
        self._odd_byte = b""  # half an int16 sample from an odd-sized PCM byte chunk
        self._candidate: str | None = None  # the key of the latest run of hits
        self._run = 0  # how many consecutive blocks it has hit
        self._held: str | None = None  # the key whose press was reported and goes on
        self._misses = 0  # blocks since the held key was last heard
        self._after_gap = False  # the next block follows audio lost on the way
        self._lost_blocks = 0  # blocks' worth of it, misses unless the held key returns
        self._last: NDArray[np.float64] = np.zeros(0)  # the latest samples fed (≤ 2 blocks kept)
        self._previous: NDArray[np.float64] | None = None  # the grid's latest block, if a hit

    def feed_ulaw(self, data: bytes | bytearray | memoryview) -> list[str]:
        """The keys confirmed in the next stretch of G.711 μ-law audio (one byte per
        sample, as Twilio's ``media`` payloads after base64)."""
        try:
            codes = np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError):
            return []
        return self._feed(_ULAW_TO_FLOAT[codes])

    def feed_alaw(self, data: bytes | bytearray | memoryview) -> list[str]:
        """The keys confirmed in the next stretch of G.711 A-law audio (RTP payload
        type 8, one byte per sample)."""
        try:
            codes = np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError):
            return []
        return self._feed(_ALAW_TO_FLOAT[codes])

    def feed_pcm(self, samples: ArrayLike | bytes | bytearray | memoryview) -> list[str]:
        """The keys confirmed in the next stretch of linear PCM at 8 kHz.

        Integers are on the int16 scale; floats on the ±1.0 scale; raw bytes are
        little-endian int16 (an odd byte waits for its partner in the next chunk).
        Values out of range are clipped, NaN is silence, anything else gives no digit.
        """
        try:
            if isinstance(samples, bytes | bytearray | memoryview):
                raw = self._odd_byte + bytes(samples)
                even = len(raw) & ~1
                self._odd_byte = raw[even:]
                pcm = np.frombuffer(raw[:even], dtype="<i2").astype(np.float64)
            else:
                array = np.asarray(samples)
                if array.dtype.kind == "f":
                    pcm = np.nan_to_num(array.astype(np.float64).ravel() * 32768.0)
                elif array.dtype.kind in "iub":
                    pcm = array.astype(np.float64).ravel()
                else:
                    return []
                pcm = np.clip(pcm, -32768.0, 32767.0)
        except (TypeError, ValueError, OverflowError):
            return []
        return self._feed(pcm)

    def lost(self, samples: int = CHUNK_SAMPLES) -> list[str]:
        """`samples` of the call's audio were lost on the way (an RTP sequence gap, a
        jump in a Twilio stream's ``media.chunk``): the keys whose press this confirms.

        What was lost is unknown, tone or pause: a held key heard again right after it
        goes on through it (a long press is not split in two), while a key not heard
        after it counts it as pause (two presses of one key 60 ms apart stay two); and
        one hit beside it counts as the two a press needs (a 40 ms tone with 20 ms of
        it lost may leave one block of tone).
        The partial block before the gap is dropped; blocks start afresh after it.
        Audio a gateway replaced by silence or by a copy of the previous frame is fed
        as audio instead, and the detector cannot tell.
        """
        try:
            if int(samples) <= 0:
                return []
            count = int(samples)
        except (TypeError, ValueError, OverflowError):
            return []
        self._rest = np.zeros(0)
        self._last = np.zeros(0)
        self._previous = None
        self._after_gap = True
        self._lost_blocks += -(-count // BLOCK)
        key = self._candidate
        if self._held is None and key is not None and self._run >= 1:
            self._held, self._misses = key, 0
            return [key]
        return []

    def _feed(self, samples: NDArray[np.float64]) -> list[str]:
        pending = np.concatenate((self._rest, samples)) if self._rest.size else samples
        earlier, self._last = self._last, samples[-2 * BLOCK :]
        count = pending.size // BLOCK
        self._rest = pending[count * BLOCK :].copy()
        found: list[str] = []
        if count:
            blocks = pending[: count * BLOCK].reshape(count, BLOCK)
            found += self._blocks(blocks, advance=True)
        if self._held is None and self._run >= 1 and self._rest.size:
            # The latest block was a hit: the two blocks that end with the stream now
            # may confirm the press before the next block completes (a tone of ≥ 21 ms
            # fills both, so < 20 ms is still refused), a frame earlier on average.
            history = samples
            if samples.size < 2 * BLOCK:
                history = np.concatenate((earlier, samples))[-2 * BLOCK :]
                self._last = history
            if history.size < 2 * BLOCK:
                return found
            latest = history[-2 * BLOCK :]
            pair = self._blocks(latest.reshape(2, BLOCK), advance=False)
            if len(pair) == 2 and pair[0] == pair[1] == self._candidate and _pure(latest, pair[0]):
                self._held, self._misses, self._run = pair[0], 0, HITS_TO_BEGIN
                found.append(pair[0])
        return found

    def _blocks(self, blocks: NDArray[np.float64], advance: bool) -> list[str]:
        """Classify whole blocks: with `advance`, move the press state on by each and
        return the keys whose press began; without, return each block's key."""
        sums = blocks @ _BASIS  # every block × 8 frequencies × (whole, 2 halves) × cos/sin
        squares = sums[:, :16] * sums[:, :16]
        powers = (squares[:, :8] + squares[:, 8:]).tolist()
        found: list[str] = []
        for index, power in enumerate(powers):
            key = self._classify(blocks, sums, index, power)
            if not advance:
                found += [key] if key is not None else []
            elif key is None:
                self._advance(None, None)
                self._previous = None
            else:
                block = blocks[index]
                if self._advance(key, block):
                    found.append(key)
                self._previous = block
        return found

    def _classify(
        self,
        blocks: NDArray[np.float64],
        sums: NDArray[np.float64],
        index: int,
        power: list[float],
    ) -> str | None:
        """The key block `index` holds, or None (the Q.24 checks of the module doc)."""
        rows, columns = power[:4], power[4:]
        row_power, column_power = max(rows), max(columns)
        if row_power < _MIN_POWER or column_power < _MIN_POWER:
            return None
        if row_power > column_power * NORMAL_TWIST or column_power > row_power * REVERSE_TWIST:
            return None
        row, column = rows.index(row_power), columns.index(column_power)
        for other in range(4):
            if other != row and rows[other] * RELATIVE_PEAK > row_power:
                return None
            if other != column and columns[other] * RELATIVE_PEAK > column_power:
                return None
        block_halves = sums[index, 16:].tolist()
        if not _steady_and_in_tune(block_halves, row):
            return None
        if not _steady_and_in_tune(block_halves, 4 + column):
            return None
        block = blocks[index]
        tones, energy = row_power + column_power, float(block @ block)
        if tones < _SHARE_SCALE * energy:
            # The block's energy above 400 Hz: all of it less its DFT bins 0–5 (Parseval:
            # Σx² = (|X₀|² + 2·Σ|Xₖ|² + …)/N for whole cycles, so the share is exact).
            low = (block @ _LOW_BASIS).tolist()
            below = low[0] * low[0] + 2.0 * sum(value * value for value in low[1:])
            if tones < _SHARE_SCALE * (energy - below / BLOCK):
                return None
        return KEYS[4 * row + column]

    def _advance(self, key: str | None, block: NDArray[np.float64] | None) -> bool:
        """Move the press state on by one block; True when `key`'s press begins now.

        The press begins when the run of hits is long enough and this block and the
        one before are a pure pair; right after lost audio there is no block before to
        ask, and the hit beside the gap begins it alone (see `lost`)."""
        after_gap, self._after_gap = self._after_gap, False
        lost, self._lost_blocks = self._lost_blocks, 0
        if key is not None and key == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = key, (0 if key is None else 1)
        if after_gap and key is not None:
            self._run = max(self._run, HITS_TO_BEGIN)  # the gap stands for the other hit
        if self._held is not None:
            if key == self._held:
                self._misses = 0
                return False
            self._misses += 1 + lost
            if self._misses < MISSES_TO_END:
                return False
            self._held = None
        if key is not None and self._run >= HITS_TO_BEGIN:
            previous = self._previous
            if (
                not after_gap
                and previous is not None
                and block is not None
                and not _pure(np.concatenate((previous, block)), key)
            ):
                return False
            self._held, self._misses = key, 0
            return True
        return False


# -- one press, two reports --

MERGE_WINDOW_S: Final = 0.6  # a tone and an event of one press arrive this close


class PressMerger:
    """Each key press once, when two sources report the same presses: a provider's
    DTMF events (Twilio's ``dtmf`` messages, RFC 4733) and the tones a detector hears
    in the same call's audio.

    The first report of a press counts (the tone is usually heard ~25 ms after the
    key goes down, the event comes when it is released). A report is the *other*
    source's copy of a press already counted when that source has an unmatched report
    of the same key less than `window_s` old; reports are matched oldest first, so a
    key pressed twice quickly is still two presses. A source that misses a press costs
    nothing: its partner's report simply finds no match and counts. Pure: the caller
    passes the time.
    """

    def __init__(self, window_s: float = MERGE_WINDOW_S, depth: int = 32) -> None:
        self.window_s = window_s
        self.depth = depth
        self._unmatched: dict[str, list[tuple[float, str]]] = {}  # source → (time, key)
        self.merged = 0  # reports that were a copy of a press already counted

    def press(self, source: str, key: str, now: float) -> bool:
        """Whether this report of `key` from `source` at `now` is a new press."""
        oldest = now - self.window_s
        for other, reports in self._unmatched.items():
            reports[:] = [(t, k) for t, k in reports if t >= oldest]
            if other == source:
                continue
            for index, (_, earlier) in enumerate(reports):
                if earlier == key:
                    del reports[index]
                    self.merged += 1
                    return False
        mine = self._unmatched.setdefault(source, [])
        mine.append((now, key))
        del mine[: -self.depth]
        return True
