"""The phone-audio bundle and the jitter buffer: pure, no I/O, the clock passed in."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.phone_audio import (
    FRAME_BYTES,
    MAX_BUNDLE,
    Bundle,
    BundleError,
    JitterBuffer,
    encode_bundle,
    parse_bundle,
)

SHARED = bytes(range(FRAME_BYTES))
BASS = bytes(reversed(range(FRAME_BYTES)))
CUE = b"\x10" * FRAME_BYTES


def bundle(seq: int) -> Bundle:
    return Bundle(seq, (SHARED,), {})


def test_a_bundle_reads_back_as_written() -> None:
    data = encode_bundle(7, [SHARED, BASS, CUE], {"c-5f1e09a2b4": 1, "c-0b77c1d2e3": 2})
    read = parse_bundle(data)
    assert read.seq == 7
    assert read.mixes == (SHARED, BASS, CUE)
    assert read.for_caller("c-5f1e09a2b4") == BASS
    assert read.for_caller("c-0b77c1d2e3") == CUE


def test_a_caller_not_named_hears_the_shared_mix() -> None:
    read = parse_bundle(encode_bundle(1, [SHARED, BASS], {"c-1": 1}))
    assert read.for_caller("c-someone-else") == SHARED


def test_eight_holders_cost_about_one_and_a_half_kilobytes_a_frame() -> None:
    callers = {f"c-{i:010x}": i + 1 for i in range(8)}
    data = encode_bundle(1, [SHARED] * 9, callers)
    assert 1500 < len(data) < 1700  # 80 KB/s at 50 frames a second


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "shorter than a bundle's head"),
        (b"XXXX" + bytes(8) + SHARED, "bad magic"),
        (b"DJPA\x02\x01\x00\x00" + bytes(4) + SHARED, "version 2"),
        (b"DJPA\x01\x00\x00\x00" + bytes(4), "out of bounds"),
        (b"DJPA\x01\x02\x00\x00" + bytes(4) + SHARED, "truncated in its mixes"),
        (b"DJPA\x01\x01\x01\x00" + bytes(4) + SHARED, "truncated in its callers"),
        (b"DJPA\x01\x01\x01\x00" + bytes(4) + SHARED + b"\x03c-1", "truncated in its callers"),
        (b"DJPA\x01\x01\x01\x00" + bytes(4) + SHARED + b"\x03c-1\x01", "mix 1 of 1"),
        (b"DJPA\x01\x01\x01\x00" + bytes(4) + SHARED + b"\x03c 1\x00", "not 1-64"),
        (b"DJPA\x01\x01\x00\x00" + bytes(4) + SHARED + b"!", "1 bytes after"),
        (b"DJPA" + bytes(MAX_BUNDLE), "over the"),
    ],
)
def test_a_bad_bundle_is_refused_saying_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(BundleError, match=says):
        parse_bundle(data)


@given(st.binary(max_size=2000))
def test_any_bytes_end_as_a_bundle_or_a_bundle_error(data: bytes) -> None:
    with contextlib.suppress(BundleError):
        parse_bundle(data)


@given(st.binary(min_size=12, max_size=800), st.integers(0, 799))
def test_a_damaged_bundle_never_raises_anything_else(noise: bytes, cut: int) -> None:
    good = encode_bundle(3, [SHARED, BASS], {"c-1": 1, "c-2": 0})
    damaged = good[:cut] + noise + good[cut + len(noise) :]
    with contextlib.suppress(BundleError):
        parse_bundle(damaged)


def test_the_writer_refuses_what_the_reader_would() -> None:
    with pytest.raises(ValueError, match="160 bytes"):
        encode_bundle(1, [b"short"], {})
    with pytest.raises(ValueError, match="caller id"):
        encode_bundle(1, [SHARED], {"+14155551212 ": 0})
    with pytest.raises(ValueError, match="caller id"):
        encode_bundle(1, [SHARED], {"c-1": 1})


def test_the_buffer_holds_its_budget_before_it_plays() -> None:
    buffer = JitterBuffer(target=3)
    assert buffer.budget_ms == 60
    buffer.push(bundle(1), 0.0)
    buffer.push(bundle(2), 0.02)
    assert buffer.pop(0.02) is None  # two frames: still filling
    buffer.push(bundle(3), 0.04)
    played = [buffer.pop(0.04), buffer.pop(0.06), buffer.pop(0.08)]
    assert [b.seq for b in played if b is not None] == [1, 2, 3]
    assert buffer.stats.ages_ms[0] == pytest.approx(40.0)


def test_a_buffer_run_dry_counts_an_underrun_and_fills_again() -> None:
    buffer = JitterBuffer(target=2)
    for seq in (1, 2):
        buffer.push(bundle(seq), 0.0)
    assert buffer.pop(0.0) is not None and buffer.pop(0.02) is not None
    assert buffer.pop(0.04) is None
    assert buffer.stats.underruns == 1
    buffer.push(bundle(3), 0.05)
    assert buffer.pop(0.06) is None  # one frame is under the budget again
    buffer.push(bundle(4), 0.07)
    assert [buffer.pop(0.08).seq, buffer.pop(0.1).seq] == [3, 4]  # type: ignore[union-attr]


def test_a_burst_beyond_the_slack_drops_the_oldest_frames() -> None:
    buffer = JitterBuffer(target=3, slack=2)
    for seq in range(1, 11):
        buffer.push(bundle(seq), 0.0)
    assert len(buffer) == 5
    assert buffer.stats.dropped == 5
    assert buffer.pop(0.0).seq == 6  # type: ignore[union-attr]


def test_a_frame_older_than_one_played_is_dropped_as_late() -> None:
    buffer = JitterBuffer(target=1)
    buffer.push(bundle(10), 0.0)
    assert buffer.pop(0.0).seq == 10  # type: ignore[union-attr]
    buffer.push(bundle(9), 0.01)
    buffer.push(bundle(10), 0.01)
    assert buffer.stats.late == 2 and len(buffer) == 0
    buffer.push(bundle(11), 0.02)
    assert buffer.pop(0.02).seq == 11  # type: ignore[union-attr]


def test_seq_wraps_without_being_taken_for_late() -> None:
    buffer = JitterBuffer(target=1)
    buffer.push(bundle(2**32 - 1), 0.0)
    buffer.pop(0.0)
    buffer.push(bundle(0), 0.02)
    assert buffer.stats.late == 0 and buffer.pop(0.02).seq == 0  # type: ignore[union-attr]


def test_a_new_feed_starts_from_nothing() -> None:
    buffer = JitterBuffer(target=1)
    buffer.push(bundle(500), 0.0)
    buffer.pop(0.0)
    buffer.reset()
    buffer.push(bundle(1), 0.1)  # the billboard restarted: its seq starts again
    assert buffer.pop(0.1).seq == 1  # type: ignore[union-attr]


def test_a_feed_far_behind_is_a_restarted_billboard_not_late_frames() -> None:
    buffer = JitterBuffer(target=1)
    buffer.push(bundle(5000), 0.0)
    buffer.pop(0.0)
    buffer.push(bundle(3), 0.02)  # another relay's billboard restarted: seq from 0
    assert buffer.stats.restarts == 1 and buffer.stats.late == 0
    assert buffer.pop(0.02).seq == 3  # type: ignore[union-attr]
