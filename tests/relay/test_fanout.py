"""The fan-out core, with no event loop, socket or clock: time is the test's `Rig.now`,
and a round of writes is taken by hand, as the adapter (relay/connections.py) takes it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay import protocol
from relay.channel import event_cost
from relay.fanout import BIG_FLUSH, BIG_FLUSH_GAP_S, SHED_TO
from relay.protocol import ProtocolError, installation_channels
from tests.support.fanout import Rig, decode


def test_nothing_is_written_inside_a_publish_and_the_adapter_is_woken_once() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=False)
    rig.publish("a", {"n": 1})
    rig.publish("a", {"n": 2})
    assert rig.wakes == 1 and sub.pending()
    assert rig.round() == {sub: [{"n": 1}, {"n": 2}]}
    assert not sub.pending() and rig.round() == {}
    rig.publish("a", {"n": 3})  # a new round wakes the adapter again
    assert rig.wakes == 2 and rig.round() == {sub: [{"n": 3}]}


def test_events_published_in_one_round_go_out_as_one_array_to_v2() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    for n in range(3):
        rig.publish("a", {"n": n})
    subscribed, batch = rig.round()[sub]
    assert subscribed == {"type": "subscribed", "id": "a", "seq": 0, "epoch": "boot-1"}
    assert [(e["seq"], e["data"]) for e in batch] == [(1, {"n": 0}), (2, {"n": 1}), (3, {"n": 2})]
    assert all(e["ts"] == 42 for e in batch)


def test_v1_subscribers_get_one_frame_per_event_even_when_several_wait() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=False)
    for n in range(3):
        rig.publish("a", {"n": n})
    assert rig.round()[sub] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_the_publisher_gets_no_echo_on_its_own_v1_subscription() -> None:
    rig = Rig()
    sub, other = rig.open(), rig.open()
    rig.subscribe(sub, "a", v2=False)
    rig.subscribe(other, "a", v2=False)
    rig.publish("a", {"n": 1}, origin=sub)
    assert rig.round() == {other: [{"n": 1}]}


def test_an_outbox_left_unwritten_keeps_its_events_and_the_others_go_on() -> None:
    rig = Rig()
    slow, fast = rig.open(), rig.open()
    for s in (slow, fast):
        rig.subscribe(s, "a", v2=True)
    rig.round()
    for n in range(5):  # the adapter writes `fast` every round and skips `slow` (backed up)
        rig.publish("a", {"n": n})
        for outbox in rig.fanout.take_dirty():
            if outbox is fast:
                assert [e["seq"] for e in decode(fast.data_to_send(rig.now))] == [n + 1]
    assert len(slow.items) == 5
    (batch,) = decode(slow.data_to_send(rig.now))  # its socket drains: one array
    assert [e["seq"] for e in batch] == [1, 2, 3, 4, 5]


def test_replies_go_out_before_events_and_are_never_dropped() -> None:
    rig = Rig(queue=2)
    sub = rig.open()
    rig.subscribe(sub, "a", v2=False)
    for n in range(4):
        rig.publish("a", {"n": n})
    sub.send_control(b'{"type":"pong"}')
    assert rig.round()[sub] == [{"type": "pong"}, {"n": 2}, {"n": 3}]


def test_overflow_drops_the_oldest_and_tells_v2_the_gap() -> None:
    rig = Rig(queue=3)
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    rig.round()
    for n in range(10):
        rig.publish("a", {"n": n})
    assert rig.fanout.stats.drops == 7
    (batch,) = decode(sub.data_to_send(rig.now))
    gap, *events = batch
    assert gap == {"type": "gap", "id": "a", "from": 1, "to": 7, "reason": "overflow"}
    assert [e["seq"] for e in events] == [8, 9, 10]


def test_an_outbox_overflowed_past_slow_close_s_is_stuck_until_it_catches_up() -> None:
    rig = Rig(queue=2, slow_close_s=5.0)
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    assert not sub.stuck(rig.now)
    for n in range(5):
        rig.publish("a", {"n": n})
    rig.now += 4.0
    assert not sub.stuck(rig.now)
    rig.now += 2.0
    assert sub.stuck(rig.now)
    sub.data_to_send(rig.now)  # it caught up: written, no longer overflowed
    assert not sub.stuck(rig.now)


def test_a_closed_outbox_takes_nothing_more() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=False)
    rig.fanout.close(sub)
    rig.publish("a", {"n": 1})
    sub.send_control(b'{"type":"pong"}')
    assert not sub.pending() and rig.round() == {}


def test_fan_out_delivers_what_another_process_sequenced() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    rig.round()
    ch = rig.fanout.channel("a")
    envelope = protocol.encode_envelope(ch.name_json, 7, 42, b'{"n":7}')
    rig.fanout.deliver(ch, 7, envelope, b'{"n":7}', rig.now)
    (event,) = rig.round()[sub]
    assert event["seq"] == 7 and event["data"] == {"n": 7}
    assert ch.seq == 0 and not ch.history  # delivered here, sequenced and kept elsewhere


def test_since_replays_history_without_loss_or_duplicates() -> None:
    rig = Rig()
    for n in range(5):
        rig.publish("a", {"n": n})
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True, since=2, epoch="boot-1")
    rig.publish("a", {"n": 5})
    subscribed, batch = rig.round()[sub]
    assert subscribed["seq"] == 5
    assert [e["seq"] for e in batch] == [3, 4, 5, 6]


def test_since_older_than_history_gets_a_gap_then_what_is_held() -> None:
    rig = Rig(history_events=3)
    for n in range(6):
        rig.publish("a", {"n": n})
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True, since=1)
    _, gap, batch = rig.round()[sub]
    assert gap == {"type": "gap", "id": "a", "from": 2, "to": 3, "reason": "history"}
    assert [e["seq"] for e in batch] == [4, 5, 6]


def test_since_from_another_epoch_gets_a_gap_then_all_that_is_held() -> None:
    rig = Rig(history_events=3)
    for n in range(6):
        rig.publish("a", {"n": n})
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True, since=5, epoch="before-1")
    _, gap, batch = rig.round()[sub]
    assert gap == {"type": "gap", "id": "a", "from": 1, "to": 3, "reason": "epoch"}
    assert [e["seq"] for e in batch] == [4, 5, 6]


def test_history_expires_with_age_and_empty_channels_are_freed() -> None:
    rig = Rig(history_seconds=60)
    rig.publish("a", {"n": 0})
    sub = rig.open()
    rig.subscribe(sub, "b", v2=False)
    rig.now += 30
    assert rig.sweep() == 0
    rig.now += 31
    assert rig.sweep() == 1
    assert list(rig.fanout.channels) == ["b"]  # held by its subscriber
    rig.fanout.close(sub)
    assert rig.sweep() == 1 and rig.fanout.channels == {}


def test_a_recreated_channel_has_a_new_epoch() -> None:
    rig = Rig(history_seconds=1)
    first = rig.publish("a", {"n": 0}).epoch
    rig.now += 2
    rig.sweep()
    assert rig.publish("a", {"n": 0}).epoch != first


def test_a_closed_outbox_leaves_every_channel_at_once() -> None:
    rig = Rig()
    sub = rig.open()
    for name in ("a", "b", "c"):
        rig.subscribe(sub, name, v2=True)
    assert rig.fanout.subscription_count() == 3
    rig.fanout.close(sub)
    assert rig.fanout.subscription_count() == 0 and rig.fanout.outboxes == set()


def test_under_heavy_fan_out_a_round_is_held_briefly_so_events_coalesce() -> None:
    rig = Rig()
    subs = [rig.open() for _ in range(BIG_FLUSH)]
    for sub in subs:
        rig.subscribe(sub, "a", v2=True)
    assert rig.fanout.hold(rig.now) == 0  # the `subscribed` replies: the first big round
    rig.round()
    rig.publish("a", {"n": 1})
    rig.publish("a", {"n": 2})
    assert rig.fanout.hold(rig.now) == pytest.approx(BIG_FLUSH_GAP_S)  # a big round just ran
    rig.now += BIG_FLUSH_GAP_S / 2
    assert rig.fanout.hold(rig.now) == pytest.approx(BIG_FLUSH_GAP_S / 2)
    rig.now += BIG_FLUSH_GAP_S / 2
    assert rig.fanout.hold(rig.now) == 0
    for frames in rig.round().values():
        assert [e["seq"] for e in frames[0]] == [1, 2]


def test_a_round_for_few_outboxes_is_never_held() -> None:
    rig = Rig()
    sub = rig.open()
    rig.subscribe(sub, "a", v2=False)
    for n in range(3):
        rig.publish("a", {"n": n})
        assert rig.fanout.hold(rig.now) == 0
        assert rig.round() == {sub: [{"n": n}]}


# -- history in bytes --


def cost_of(data: dict[str, Any]) -> int:
    """What one event of `data` costs in history on a one-letter channel, seq < 10."""
    return event_cost(protocol.encode_envelope(b'"a"', 1, 42, protocol.dumps(data)))


def held(rig: Rig, name: str) -> list[int]:
    return [seq for seq, *_ in rig.fanout.channels[name].history]


PAD = {"x": "y" * 1000}


def test_history_is_bounded_in_bytes_per_channel_by_dropping_its_oldest() -> None:
    c = cost_of(PAD)
    rig = Rig(history_bytes=3 * c)
    for _ in range(9):
        rig.publish("a", PAD)
    assert held(rig, "a") == [7, 8, 9]
    assert rig.fanout.channels["a"].history_bytes == rig.fanout.history_bytes == 3 * c
    assert rig.fanout.stats.history_dropped_channel == 6


def test_a_resume_across_history_dropped_for_bytes_gets_a_history_gap() -> None:
    rig = Rig(history_bytes=3 * cost_of(PAD))
    for _ in range(9):
        rig.publish("a", PAD)
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True, since=2, epoch="boot-1")
    _, gap, batch = rig.round()[sub]
    assert gap == {"type": "gap", "id": "a", "from": 3, "to": 6, "reason": "history"}
    assert [e["seq"] for e in batch] == [7, 8, 9]


def test_dropping_history_never_takes_an_event_from_a_subscribers_outbox() -> None:
    c = cost_of(PAD)
    rig = Rig(history_bytes=2 * c, history_total_bytes=3 * c)
    sub = rig.open()
    rig.subscribe(sub, "a", v2=True)
    for _ in range(9):  # all in one round: all nine wait in the outbox
        rig.publish("a", PAD)
    assert held(rig, "a") == [8, 9]
    assert [e["seq"] for e in rig.round()[sub][1]] == list(range(1, 10))


def test_past_the_total_bound_the_channel_holding_the_most_loses_first() -> None:
    c = cost_of(PAD)
    rig = Rig(history_total_bytes=int(15.5 * c))
    for name, count in (("c", 2), ("b", 5), ("a", 8)):
        for _ in range(count):
            rig.publish(name, PAD)
    assert rig.fanout.history_bytes == 15 * c and rig.fanout.stats.history_dropped_total == 0
    rig.publish("a", PAD)  # 16 events: over the bound, cut to 15/16 of it
    assert held(rig, "a") == [3, 4, 5, 6, 7, 8, 9]
    assert held(rig, "b") == [1, 2, 3, 4, 5] and held(rig, "c") == [1, 2]
    assert rig.fanout.stats.history_dropped_total == 2
    assert rig.fanout.history_bytes == 14 * c <= 15.5 * c * SHED_TO


def test_the_largest_channels_are_cut_to_one_level_and_a_quiet_one_keeps_its_own() -> None:
    c = cost_of(PAD)
    rig = Rig(history_total_bytes=int(14.5 * c))
    for name, count in (("a", 6), ("b", 6), ("c", 2)):
        for _ in range(count):
            rig.publish(name, PAD)
    rig.publish("c", PAD)  # the quiet channel pushes all history over the bound
    assert held(rig, "a") == held(rig, "b") == [2, 3, 4, 5, 6]
    assert held(rig, "c") == [1, 2, 3]
    assert rig.fanout.history_bytes == 13 * c


def test_history_that_expires_gives_its_bytes_back() -> None:
    rig = Rig(history_seconds=60)
    rig.publish("a", PAD)
    rig.now += 30
    rig.publish("a", PAD)
    rig.now += 31
    rig.sweep()
    assert held(rig, "a") == [2] and rig.fanout.history_bytes == cost_of(PAD)
    rig.now += 60
    rig.sweep()
    assert rig.fanout.history_bytes == 0 and rig.fanout.channels == {}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("publish"),
                st.sampled_from("abcd"),
                st.integers(0, 100) | st.integers(1000, 2000),
            ),
            st.tuples(st.just("wait"), st.just(""), st.integers(0, 40)),
            st.tuples(st.just("sweep"), st.just(""), st.just(0)),
        ),
        min_size=10,
        max_size=80,
    )
)
def test_history_bytes_always_match_what_is_held_and_stay_within_both_bounds(
    steps: list[tuple[str, str, int]],
) -> None:
    limits = {"history_events": 8, "history_seconds": 60, "history_bytes": 5000}
    rig = Rig(history_total_bytes=8000, **limits)
    for op, name, n in steps:
        if op == "publish":
            rig.publish(name, {"x": "y" * n})
        elif op == "wait":
            rig.now += n
        else:
            rig.sweep()
        total = 0
        for ch in rig.fanout.channels.values():
            seqs = [seq for seq, *_ in ch.history]
            assert seqs == list(range(ch.first_held(), ch.first_held() + len(seqs)))
            assert not seqs or seqs[-1] <= ch.seq
            assert ch.history_bytes == sum(event_cost(e) for _, _, e, _ in ch.history) <= 5000
            assert len(seqs) <= 8
            total += ch.history_bytes
        assert rig.fanout.history_bytes == total <= 8000


# -- pinned channels and who may open a channel --

PINNED = installation_channels("dialjam")


def test_pinned_channels_exist_from_the_start_and_are_never_freed() -> None:
    rig = Rig(PINNED, history_seconds=1)
    assert set(rig.fanout.channels) == PINNED
    epoch = rig.fanout.channels["dialjam:control"].epoch
    rig.publish("dialjam:control", {"event": "command", "name": "panic"})
    rig.now += 2
    assert rig.sweep() == 0
    assert (
        set(rig.fanout.channels) == PINNED and rig.fanout.channels["dialjam:control"].epoch == epoch
    )


def test_pinned_channels_do_not_count_against_max_channels() -> None:
    rig = Rig(PINNED, max_channels=2)
    rig.publish("one", {})
    rig.publish("two", {})
    with pytest.raises(ProtocolError) as refused:
        rig.publish("three", {})
    assert refused.value.code == "too_many_channels"
    assert rig.publish("dialjam:control", {"event": "command"}).seq == 1


def test_a_crowd_of_new_channels_cannot_squat_out_the_control_channel() -> None:
    rig = Rig(PINNED, max_channels=100)
    for n in range(100):
        rig.publish(f"squat-{n}", {"n": n})
    rig.sweep()  # they hold history, so none is freed
    billboard = rig.open()
    rig.subscribe(billboard, "dialjam:control", v2=False, create=False)  # a reconnect
    rig.publish("dialjam:control", {"event": "command", "name": "panic"}, create=False)
    assert rig.round()[billboard] == [{"event": "command", "name": "panic"}]


@pytest.mark.parametrize("action", ["publish", "subscribe"])
def test_without_create_an_unknown_channel_is_refused_and_not_made(action: str) -> None:
    rig = Rig(PINNED)
    sub = rig.open()
    with pytest.raises(ProtocolError) as refused:
        if action == "publish":
            rig.publish("mine", {}, create=False)
        else:
            rig.subscribe(sub, "mine", v2=True, create=False)
    assert refused.value.code == "unknown_channel"
    assert "'mine'" in refused.value.message and "token" in refused.value.message
    assert "mine" not in rig.fanout.channels and sub.subscriptions == {}


def test_without_create_a_channel_someone_opened_can_be_used() -> None:
    rig = Rig()
    opener = rig.open()
    rig.subscribe(opener, "tower-b", v2=False)  # a token holder opens it
    rig.publish("tower-b", {"n": 1}, create=False)
    anyone = rig.open()
    rig.subscribe(anyone, "tower-b", v2=False, create=False)
    rig.publish("tower-b", {"n": 2}, create=False)
    assert rig.round() == {opener: [{"n": 1}, {"n": 2}], anyone: [{"n": 2}]}


def test_the_core_imports_no_event_loop_socket_library_or_clock() -> None:
    import relay.counters
    import relay.fanout

    for module in (relay.fanout, relay.counters):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        roots = {name.split(".")[0] for name in names}
        assert not roots & {"asyncio", "aiohttp", "time", "socket", "selectors"}, module
