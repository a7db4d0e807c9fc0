"""The benchmarks' one reader of what a relay sends a subscriber (bench/wsclient.py)."""

from __future__ import annotations

from bench.wsclient import read_frame


def test_a_seed_frame_is_the_bare_data_of_one_event() -> None:
    data = {"caller_id": "c-1", "command": "5"}
    assert read_frame(data) == ([{"data": data}], [])


def test_a_v2_envelope_is_one_event_with_its_seq() -> None:
    env = {"type": "event", "id": "bench", "seq": 7, "ts": 1, "data": {"g": 3}}
    assert read_frame(env) == ([env], [])


def test_an_array_of_envelopes_keeps_its_order_and_sets_controls_apart() -> None:
    one = {"type": "event", "seq": 1, "data": {"g": 1}}
    gap = {"type": "gap", "from": 2, "to": 4}
    two = {"type": "event", "seq": 5, "data": {"g": 5}}
    assert read_frame([one, gap, two]) == ([one, two], [gap])


def test_a_control_frame_is_no_event() -> None:
    for frame in (
        {"type": "subscribed", "id": "bench", "seq": 0, "epoch": "e"},
        {"type": "error", "code": "rate_limited", "message": "slow down"},
    ):
        assert read_frame(frame) == ([], [frame])
