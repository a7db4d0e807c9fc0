"""Talk-off: a press's two blocks must hold its two pure tones and nothing else — no
third tone, no harmonic of a voice standing out of its valleys — while every tone
Q.24 must accept stays pure. Generated signals through G.711 μ-law, no I/O."""

from __future__ import annotations

import numpy as np
import pytest

from relay.gateways.dtmf import (
    COLUMNS_HZ,
    DBM0_AMPLITUDE,
    KEYS,
    ROWS_HZ,
    dtmf_tone,
)
from relay.gateways.talkoff import PAIR_SAMPLES, guard_levels, pure_pair
from relay.rehearsal.dtmf_corpus import detect, through_ulaw, with_noise

RATE = 8000


def tones_of(key: str) -> tuple[float, float]:
    index = KEYS.index(key)
    return ROWS_HZ[index // 4], COLUMNS_HZ[index % 4]


def pair_of(signal: np.ndarray, start: int = 80) -> np.ndarray:
    pcm: np.ndarray = through_ulaw(signal)[start : start + PAIR_SAMPLES].astype(np.float64)
    return pcm


def sine(hz: float, level_dbm0: float, ms: float = 60.0) -> np.ndarray:
    t = np.arange(round(ms * RATE / 1000)) / RATE
    wave: np.ndarray = DBM0_AMPLITUDE * 10 ** (level_dbm0 / 20) * np.sin(2 * np.pi * hz * t + 1.0)
    return wave


def voice(f0: float, levels_db: dict[int, float], floor_db: float, ms: float = 300) -> np.ndarray:
    """A held vowel: every harmonic of `f0` up to 3.4 kHz at `floor_db`, except those in
    `levels_db` (harmonic number → dB), each relative to −10 dBm0; around it silence."""
    t = np.arange(round(ms * RATE / 1000)) / RATE
    amplitude = DBM0_AMPLITUDE * 10 ** (-10 / 20)
    sound = np.zeros(t.size)
    for k in range(1, int(3400 / f0) + 1):
        level = 10 ** (levels_db.get(k, floor_db) / 20)
        sound += amplitude * level * np.sin(2 * np.pi * k * f0 * t + 0.7 * k * k)
    silence = np.zeros(800)
    return np.concatenate([silence, sound, silence])


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "tone",
    [
        {},
        {"level_dbm0": -30.0},
        {"level_dbm0": -3.0},
        {"twist_db": 9.0},
        {"twist_db": -5.0},
        {"row_offset": 0.015, "column_offset": -0.015},
        {"row_offset": -0.015, "column_offset": 0.015},
    ],
    ids=["-10 dBm0", "-30 dBm0", "-3 dBm0", "twist +9", "twist -5", "+1.5/-1.5 %", "-1.5/+1.5 %"],
)
def test_every_key_q24_accepts_is_pure(key: str, tone: dict[str, float]) -> None:
    signal = dtmf_tone(
        key,
        60,
        level_dbm0=tone.get("level_dbm0", -10.0),
        twist_db=tone.get("twist_db", 0.0),
        row_offset=tone.get("row_offset", 0.0),
        column_offset=tone.get("column_offset", 0.0),
    )
    assert pure_pair(pair_of(signal), *tones_of(key))


def test_a_clean_tones_guard_holds_only_its_own_sidelobes() -> None:
    against_tone, _ = guard_levels(pair_of(dtmf_tone("5", 60, twist_db=9.0)), *tones_of("5"))
    assert against_tone < -20


@pytest.mark.parametrize("third_db", [-4.0, -8.0])
@pytest.mark.parametrize("third_hz", [450.0, 1070.0, 2500.0])
def test_a_third_tone_within_10_db_of_the_weaker_makes_it_impure(
    third_hz: float, third_db: float
) -> None:
    signal = dtmf_tone("1", 60) + sine(third_hz, -10.0 + third_db)
    assert not pure_pair(pair_of(signal), *tones_of("1"))


def test_a_lone_third_tone_far_below_is_no_harm() -> None:
    signal = dtmf_tone("1", 60) + sine(1070.0, -10.0 - 30.0)
    assert pure_pair(pair_of(signal), *tones_of("1"))


@pytest.mark.parametrize(
    ("f0", "loud", "key"),
    [(170.4, (5, 7), "7"), (232.3, (3, 7), "A"), (174.25, (4, 7), "1")],
)
def test_a_voice_whose_harmonics_land_on_a_row_and_a_column_is_no_key(
    f0: float, loud: tuple[int, int], key: str
) -> None:
    # The two harmonics on the tones, the one above the row 16 dB down, the rest of
    # the voice 40 dB down: the detector's other checks all pass it (its two loudest
    # harmonics alone are the key), the pair's harmonic stands out of deep valleys.
    alone = voice(f0, {loud[0]: 0.0, loud[1]: 0.0}, -40.0)
    assert detect(through_ulaw(alone)) == key
    spoken = voice(f0, {loud[0]: 0.0, loud[1]: 0.0, loud[0] + 1: -16.0}, -40.0)
    assert detect(through_ulaw(spoken)) == ""
    louder_floor = voice(f0, {loud[0]: 0.0, loud[1]: 0.0, loud[0] + 1: -12.0}, -30.0)
    assert detect(through_ulaw(louder_floor)) == ""


def test_tones_in_white_noise_at_6_db_snr_are_mostly_pure() -> None:
    # Noise is flat: its loudest guard bin rarely nears the weaker tone and never
    # stands out of its own floor as a harmonic does (these 200 are all pure; a pair
    # that is not costs no press of 60 ms: the detector asks the next pair).
    pure = 0
    for seed in range(200):
        key = KEYS[seed % 16]
        signal = with_noise(dtmf_tone(key, 60), 6, seed=seed)
        pure += pure_pair(pair_of(signal), *tones_of(key))
    assert pure >= 198


def test_bad_input_is_never_pure_and_never_raises() -> None:
    good = pair_of(dtmf_tone("5", 60))
    row, column = tones_of("5")
    assert not pure_pair(good[:-1], row, column)
    assert not pure_pair(np.concatenate([good, good]), row, column)
    assert not pure_pair(good.reshape(2, -1), row, column)
    assert not pure_pair(np.full(PAIR_SAMPLES, np.nan), row, column)
    assert not pure_pair(np.where(np.arange(PAIR_SAMPLES) == 7, np.inf, good), row, column)
    assert not pure_pair(good, column, row)
    assert not pure_pair(good, 0.0, column)
    assert not pure_pair(good, row, 5000.0)
    assert pure_pair(np.zeros(PAIR_SAMPLES), row, column) in (True, False)


def test_a_press_whose_first_pair_is_impure_begins_at_the_next_pure_pair_once() -> None:
    tone = dtmf_tone("5", 150)
    third = sine(1070.0, -12.0, ms=150)
    spoiled_start = tone + np.where(np.arange(tone.size) < 360, third, 0.0)
    silence = np.zeros(800)
    assert detect(through_ulaw(np.concatenate([silence, spoiled_start, silence]))) == "5"
    spoiled_throughout = tone + third
    assert detect(through_ulaw(np.concatenate([silence, spoiled_throughout, silence]))) == ""
