"""In-band DTMF: the detector on a generated corpus sent through μ-law as a call
carries it (ITU-T G.711), held to the reception limits of ITU-T Q.24 (frequency
tolerance, twist, minimum duration and pause), talk-off on speech and music, and
multimon-ng on the same audio beside ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from relay.gateways.dtmf import (
    KEYS,
    DtmfDetector,
    PressMerger,
    dtmf_tone,
    ulaw_decode,
    ulaw_encode,
)
from relay.rehearsal.dtmf_corpus import (
    ALL_KEYS,
    INSTALL,
    TALKERS,
    Clip,
    accuracy_corpus,
    detect,
    missing_tools,
    more_talkers,
    multimon,
    music_corpus,
    presses,
    score,
    speech_corpus,
    table,
    through_ulaw,
    with_noise,
)
from tests.services import service_unavailable


def needs_tools() -> None:
    missing = missing_tools()
    if missing:
        service_unavailable(f"{', '.join(missing)} not found", INSTALL)


def test_ulaw_round_trip_returns_every_code_and_each_sample_within_half_a_step() -> None:
    codes = bytes(range(256))
    again = ulaw_encode(ulaw_decode(codes))
    # 0x7F is μ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
    assert [i for i in range(256) if again[i] != i] == [0x7F]
    samples = np.arange(-32768, 32768, 7)
    decoded = ulaw_decode(ulaw_encode(samples)).astype(np.int64)
    clipped = np.clip(samples, -32124, 32124)
    magnitude = np.abs(clipped) + 0x84
    half_step = 2 ** (np.floor(np.log2(magnitude)) - 4)  # 16 steps per segment
    assert np.all(np.abs(decoded - clipped) <= half_step)
    sine = 10000 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000)
    error = ulaw_decode(ulaw_encode(sine)) - sine
    assert 10 * np.log10(np.mean(sine**2) / np.mean(error**2)) > 35  # G.711's ~38 dB


@pytest.mark.parametrize("key", KEYS)
def test_every_key_is_heard_once(key: str) -> None:
    assert detect(through_ulaw(presses(key, 60))) == key


@pytest.mark.parametrize("tone_ms", [10, 15])
def test_tones_shorter_than_20_ms_are_rejected(tone_ms: int) -> None:
    for lead in range(0, 160, 13):  # every alignment against the blocks
        assert detect(through_ulaw(presses(ALL_KEYS, tone_ms, lead_ms=lead / 8))) == ""


@pytest.mark.parametrize("tone_ms", [40, 60])
def test_tones_of_40_ms_and_more_are_accepted(tone_ms: int) -> None:
    for lead in range(0, 160, 13):
        assert detect(through_ulaw(presses(ALL_KEYS, tone_ms, lead_ms=lead / 8))) == ALL_KEYS


@pytest.mark.parametrize("tone_ms", [20, 30])
def test_tones_of_20_to_40_ms_may_go_either_way(tone_ms: int) -> None:
    heard = [
        detect(through_ulaw(presses(ALL_KEYS, tone_ms, lead_ms=lead / 8)))
        for lead in range(0, 160, 13)
    ]
    total = sum(len(found) for found in heard)
    print(f"\n{tone_ms} ms tones: {total} of {len(KEYS) * len(heard)} heard (Q.24: either way)")
    assert all(set(found) <= set(KEYS) and len(found) <= len(KEYS) for found in heard)


@pytest.mark.parametrize("offset", [-0.015, 0.015])
@pytest.mark.parametrize("which", ["both", "row", "column"])
def test_frequency_errors_of_1_5_percent_are_accepted(offset: float, which: str) -> None:
    tone = {
        "row_offset": offset if which != "column" else 0.0,
        "column_offset": offset if which != "row" else 0.0,
    }
    assert detect(through_ulaw(presses(ALL_KEYS, 60, **tone))) == ALL_KEYS


@pytest.mark.parametrize("offset", [-0.04, -0.035, 0.035, 0.04])
@pytest.mark.parametrize("which", ["both", "row", "column"])
def test_frequency_errors_beyond_3_5_percent_are_rejected(offset: float, which: str) -> None:
    tone = {
        "row_offset": offset if which != "column" else 0.0,
        "column_offset": offset if which != "row" else 0.0,
    }
    assert detect(through_ulaw(presses(ALL_KEYS, 100, **tone))) == ""


@pytest.mark.parametrize(
    ("twist_db", "heard"), [(7.0, True), (10.0, False), (-3.0, True), (-6.0, False)]
)
def test_twist_up_to_8_db_normal_and_4_db_reverse_is_accepted(twist_db: float, heard: bool) -> None:
    found = detect(through_ulaw(presses(ALL_KEYS, 100, twist_db=twist_db)))
    assert found == (ALL_KEYS if heard else "")


@pytest.mark.parametrize("snr_db", [20, 10, 6])
def test_tones_in_white_noise_are_heard_at_good_snr(snr_db: int) -> None:
    found = detect(through_ulaw(with_noise(presses(ALL_KEYS * 2, 60), snr_db, seed=snr_db)))
    hits, wrong = score(ALL_KEYS * 2, found)
    print(f"\nSNR {snr_db} dB: {hits}/{2 * len(KEYS)} heard, {wrong} wrong")
    assert wrong == 0
    assert hits >= (2 * len(KEYS) if snr_db >= 10 else 2 * len(KEYS) - 2)


def test_pure_noise_gives_no_digit() -> None:
    rng = np.random.default_rng(11)
    for level in (300.0, 3000.0, 20000.0):
        assert detect(through_ulaw(rng.normal(0.0, level, 8000 * 20))) == ""


def test_digits_with_50_ms_gaps_are_each_heard_once_in_order() -> None:
    keys = "1122334455667788990*#ABCD5555"
    assert detect(through_ulaw(presses(keys, 60, gap_ms=50))) == keys


def test_a_key_held_for_seconds_is_heard_once() -> None:
    assert detect(through_ulaw(presses("7", 5000))) == "7"
    noisy = with_noise(presses("7", 5000), 10, seed=3)
    assert detect(through_ulaw(noisy)) == "7"


@pytest.mark.parametrize("chunk", [1, 7, 33, 101, 103, 160, 161, 999])
def test_a_tone_split_across_odd_chunk_sizes_is_heard_once(chunk: int) -> None:
    assert detect(through_ulaw(presses("9", 60)), chunk=chunk) == "9"


def test_pcm_of_any_kind_is_heard_and_odd_input_never_raises() -> None:
    tone = np.concatenate([np.zeros(400), dtmf_tone("5", 60), np.zeros(400)])
    assert DtmfDetector().feed_pcm(tone.astype(np.int16)) == ["5"]
    assert DtmfDetector().feed_pcm(tone / 32768.0) == ["5"]
    assert DtmfDetector().feed_pcm(tone.astype("<i2").tobytes()) == ["5"]
    odd = DtmfDetector()
    data = tone.astype("<i2").tobytes()
    assert [
        d for start in range(0, len(data), 161) for d in odd.feed_pcm(data[start : start + 161])
    ] == ["5"]
    detector = DtmfDetector()
    for bad in (
        b"",
        b"\x00",
        [],
        np.array([np.nan, np.inf, -np.inf]),
        ["x", "y"],
        None,
        3.5,
        np.full(800, 1e9),
        np.full(800, -40.0),
        np.array([1 + 2j]),
        object(),
    ):
        assert detector.feed_pcm(bad) == []  # type: ignore[arg-type]
    for bad_bytes in (b"", b"\xff" * 3, None, 12):
        assert detector.feed_ulaw(bad_bytes) == []  # type: ignore[arg-type]
    clipped = np.clip(dtmf_tone("8", 100, level_dbm0=6.0), -32768, 32767)
    assert set(DtmfDetector().feed_pcm(clipped.astype(np.int16))) <= {"8"}


def _compare(clips: list[Clip], tmp_path: Path) -> tuple[int, int, int, int, int]:
    rows = []
    ours_hits = ours_wrong = theirs_hits = theirs_wrong = expected = 0
    for index, clip in enumerate(clips):
        ours, theirs = detect(clip.pcm), multimon(clip.pcm, tmp_path, f"clip{index}")
        hits, wrong = score(clip.expected, ours)
        their_hits, their_wrong = score(clip.expected, theirs)
        ours_hits, ours_wrong = ours_hits + hits, ours_wrong + wrong
        theirs_hits, theirs_wrong = theirs_hits + their_hits, theirs_wrong + their_wrong
        expected += len(clip.expected)
        rows.append((clip.name, clip.expected or "-", ours or "-", theirs or "-"))
    print("\n" + table(rows))
    print(
        f"heard: dtmf.py {ours_hits}/{expected}, multimon-ng {theirs_hits}/{expected}; "
        f"false digits: dtmf.py {ours_wrong}, multimon-ng {theirs_wrong}"
    )
    return expected, ours_hits, ours_wrong, theirs_hits, theirs_wrong


def test_detection_rate_is_at_least_multimon_ngs_on_the_generated_corpus(tmp_path: Path) -> None:
    needs_tools()
    _, ours_hits, ours_wrong, theirs_hits, _ = _compare(accuracy_corpus(), tmp_path)
    assert ours_hits >= theirs_hits
    assert ours_wrong == 0


def test_speech_in_94_voices_gives_no_false_digit(tmp_path: Path) -> None:
    # TALKERS (six English voices, five other languages, sung vowels) and 80 more
    # drawn from 92 voice variants, 22 languages and pitches 0–99, a fifth of them
    # singing: 1,380 s. Before the talk-off check (relay/gateways/talkoff.py): 7 false
    # digits here (multimon-ng: 11), each a voice whose harmonics landed on a row
    # and a column with its other harmonics between them.
    needs_tools()
    clips = speech_corpus(tmp_path, [*TALKERS, *more_talkers(80)])
    _, _, ours_wrong, _, theirs_wrong = _compare(clips, tmp_path)
    assert ours_wrong == 0
    assert theirs_wrong > 0  # the corpus does hold talk-off a detector can fall for


def test_music_gives_no_false_digit(tmp_path: Path) -> None:
    needs_tools()
    clips = music_corpus(tmp_path) + music_corpus(tmp_path, seed=20)
    _, _, ours_wrong, _, theirs_wrong = _compare(clips, tmp_path)
    assert ours_wrong == 0
    assert ours_wrong <= theirs_wrong


# -- one press reported by two sources --


def test_a_press_reported_by_both_sources_counts_once_whichever_comes_first() -> None:
    merger = PressMerger()
    assert merger.press("tone", "5", 1.00) is True
    assert merger.press("event", "5", 1.08) is False
    assert merger.press("event", "7", 2.00) is True
    assert merger.press("tone", "7", 2.03) is False
    assert merger.merged == 2


def test_a_single_source_counts_every_press_even_the_same_key_quickly() -> None:
    merger = PressMerger()
    assert [merger.press("event", "1", 0.1 * n) for n in range(5)] == [True] * 5


def test_a_key_pressed_twice_quickly_is_two_presses_when_both_sources_report_both() -> None:
    merger = PressMerger()
    reports = [("tone", 0.00), ("event", 0.10), ("tone", 0.18), ("event", 0.28)]
    assert [merger.press(source, "9", t) for source, t in reports] == [True, False, True, False]


def test_reports_further_apart_than_the_window_or_of_other_keys_are_different_presses() -> None:
    merger = PressMerger(window_s=0.6)
    assert merger.press("tone", "2", 0.0) is True
    assert merger.press("event", "2", 0.7) is True
    assert merger.press("tone", "3", 0.75) is True
    assert merger.press("event", "4", 0.76) is True
    assert merger.merged == 0


def test_a_press_one_source_missed_does_not_swallow_a_later_press() -> None:
    merger = PressMerger()
    # The detector missed the first "6"; Twilio reported both.
    assert merger.press("event", "6", 0.0) is True
    assert merger.press("tone", "6", 0.25) is False  # taken for the first press's copy…
    assert merger.press("event", "6", 0.35) is True  # …so the second still counts
