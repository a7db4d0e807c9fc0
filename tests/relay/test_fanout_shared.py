"""The fan-out's side of a shared backplane, with no Redis, loop or clock: events that
another process sequenced come in through `FanOut.apply` (and `FanOut.adopt` after a
catch-up), and this process's copy of the history answers a resume as its own would."""

from __future__ import annotations

from typing import Any

import orjson

from relay.fanout import FanOut, Limits
from tests.support.fanout import Rig


def apply(
    fan: FanOut, seq: int, epoch: str = "E", origin: Any = None, to: str | None = None
) -> Any:
    return fan.apply("a", epoch, seq, 1_000 + seq, orjson.dumps({"n": seq}), 1000.0, origin, to)


def seqs(frames: list[Any]) -> list[int]:
    out: list[int] = []
    for frame in frames:
        for item in frame if isinstance(frame, list) else [frame]:
            if item.get("type") == "event":
                out.append(item["seq"])
    return out


def test_an_event_sequenced_elsewhere_keeps_its_seq_ts_and_epoch_and_is_delivered() -> None:
    rig = Rig()
    rig.fanout.adopt("a", "E", 0)  # as the backplane does for every channel it knows
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    rig.round()
    for seq in (1, 2, 3):
        apply(rig.fanout, seq)
    (batch,) = rig.round()[sub]
    assert [(e["seq"], e["ts"], e["data"]["n"]) for e in batch] == [
        (1, 1001, 1),
        (2, 1002, 2),
        (3, 1003, 3),
    ]
    ch = rig.fanout.channels["a"]
    assert (ch.seq, ch.epoch, [h[0] for h in ch.history]) == (3, "E", [1, 2, 3])


def test_an_event_already_held_is_not_delivered_twice() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    rig.round()
    assert apply(rig.fanout, 1) is not None
    assert apply(rig.fanout, 1) is None
    assert seqs(rig.round()[sub]) == [1]


def test_a_resume_on_this_process_replays_from_its_copy_of_the_shared_history() -> None:
    rig = Rig()
    for seq in range(1, 6):
        apply(rig.fanout, seq)
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True, since=3, epoch="E")
    subscribed, batch = rig.round()[sub]
    assert (subscribed["seq"], subscribed["epoch"]) == (5, "E")
    assert [e["seq"] for e in batch] == [4, 5]


def test_seqs_that_skip_leave_no_hole_in_what_is_held_and_a_resume_gets_a_gap() -> None:
    rig = Rig()
    for seq in (1, 2, 5, 6):
        apply(rig.fanout, seq)
    assert [h[0] for h in rig.fanout.channels["a"].history] == [5, 6]
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True, since=1, epoch="E")
    _, gap, batch = rig.round()[sub]
    assert gap == {"type": "gap", "id": "a", "from": 2, "to": 4, "reason": "history"}
    assert [e["seq"] for e in batch] == [5, 6]


def test_a_new_epoch_from_the_backplane_forgets_what_was_held_and_starts_again() -> None:
    rig = Rig()
    for seq in (1, 2, 3):
        apply(rig.fanout, seq)
    apply(rig.fanout, 1, epoch="F")
    ch = rig.fanout.channels["a"]
    assert (ch.epoch, ch.seq, [h[0] for h in ch.history]) == ("F", 1, [1])
    assert rig.fanout.history_bytes == ch.history_bytes
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True, since=3, epoch="E")
    _, gap, *events = rig.round()[sub]
    assert gap["reason"] == "epoch" and seqs(events) == [1]


def test_adopting_the_backplanes_position_moves_a_channel_that_fell_behind() -> None:
    fan = FanOut(Limits(), boot="boot", pinned=["a"])
    assert fan.channels["a"].epoch == "boot-1"
    ch = fan.adopt("a", "E", 0)
    assert (ch.epoch, ch.seq) == ("E", 0)  # a channel nobody published on: its shared epoch
    apply(fan, 1)
    apply(fan, 2)
    fan.adopt("a", "E", 9)  # 3..9 cut from the shared history before this process read them
    assert (ch.seq, list(ch.history), fan.history_bytes) == (9, [], 0)
    fan.adopt("a", "E", 4)  # never backwards
    assert ch.seq == 9


def test_the_publishers_own_v1_subscription_gets_no_echo_from_the_backplane() -> None:
    rig = Rig()
    publisher, other = rig.open(), rig.open()
    rig.subscribe(publisher, "a", v2=False)
    rig.subscribe(other, "a", v2=False)
    rig.round()
    apply(rig.fanout, 1, origin=publisher)
    assert list(rig.round()) == [other]


def test_an_addressed_event_from_the_backplane_reaches_only_its_caller() -> None:
    rig = Rig()
    rig.fanout.adopt("a", "E", 0)
    mine, theirs = rig.open(), rig.open()
    rig.fanout.subscribe(mine, "a", True, rig.now, caller="c-mine")
    rig.fanout.subscribe(theirs, "a", True, rig.now, caller="c-theirs")
    rig.round()
    apply(rig.fanout, 1, to="c-mine")
    assert list(rig.round()) == [mine]


def test_live_v2_subscribers_are_told_of_a_new_epoch_and_follow_its_seqs() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    apply(rig.fanout, 1)
    apply(rig.fanout, 2)
    rig.round()
    apply(rig.fanout, 1, epoch="F")  # Redis lost the channel's history: it starts again
    told, event = rig.round()[sub]
    assert told == {"type": "subscribed", "id": "a", "seq": 0, "epoch": "F"}
    assert (event["seq"], event["data"]) == (1, {"n": 1})
