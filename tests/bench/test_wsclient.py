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


def test_the_fast_reader_agrees_with_the_contracts_v2_subscriber() -> None:
    """read_frame is the load generator's, kept minimal because it reads 200,000 frames
    a second and the contract's V2Subscriber builds an object per message; on v2
    frames both must see the same events, in the same order, and nothing else."""
    from relay.contract.subscriber import Received, V2Subscriber

    frames: list[object] = [
        {"type": "subscribed", "id": "bench", "seq": 0, "epoch": "e1"},
        {"type": "event", "id": "bench", "seq": 1, "ts": 5, "data": {"g": 1}},
        [
            {"type": "event", "id": "bench", "seq": 2, "ts": 6, "data": {"g": 2}},
            {"type": "gap", "id": "bench", "from": 3, "to": 4, "reason": "overflow"},
            {"type": "event", "id": "bench", "seq": 5, "ts": 7, "data": {"g": 5}},
        ],
        {"type": "error", "code": "rate_limited", "message": "slow down"},
    ]
    contract = V2Subscriber(["bench"])
    for frame in frames:
        fast, _ = read_frame(frame)
        slow = [m for m in contract.receive(frame) if isinstance(m, Received)]
        assert [(e["id"], e["seq"], e["data"]) for e in fast] == [
            (m.channel, m.seq, m.data) for m in slow
        ]
