"""Fan-out, outboxes and history, against a fake transport (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay import protocol
from relay.channels import (
    BIG_FLUSH,
    BIG_FLUSH_GAP_S,
    HIGH_WATER,
    SHED_TO,
    Hub,
    HubLimits,
    Subscriber,
    event_cost,
)
from relay.protocol import ProtocolError, installation_channels


class FakeTransport:
    """Records frames; `backlog` stands for bytes the kernel has not taken yet."""

    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.backlog = 0
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        while data:  # split the unmasked server frames back into payloads
            assert data[0] == 0x81
            n, start = data[1], 2
            if n == 126:
                n, start = int.from_bytes(data[2:4], "big"), 4
            elif n == 127:
                n, start = int.from_bytes(data[2:10], "big"), 10
            self.frames.append(orjson.loads(data[start : start + n]))
            data = data[start + n :]

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_hub(pinned: frozenset[str] = frozenset(), **limits: Any) -> tuple[Hub, Clock]:
    clock = Clock()
    hub = Hub(HubLimits(**limits), clock=clock, wall_ms=lambda: 42, boot="boot", pinned=pinned)
    return hub, clock


def attach(hub: Hub) -> tuple[Subscriber, FakeTransport, list[str]]:
    sink = FakeTransport()
    closed: list[str] = []
    return hub.attach(sink, lambda: closed.append("slow")), sink, closed


async def test_an_idle_subscriber_gets_each_event_in_the_next_loop_iteration() -> None:
    hub, _ = make_hub()
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=False)
    hub.publish("a", {"n": 1})
    assert sink.frames == []  # nothing is written inside publish
    await asyncio.sleep(0)
    assert sink.frames == [{"n": 1}]


async def test_events_published_in_one_iteration_go_out_as_one_array_to_v2() -> None:
    hub, _ = make_hub()
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=True)
    for n in range(3):
        hub.publish("a", {"n": n})
    await asyncio.sleep(0)
    subscribed, batch = sink.frames
    assert subscribed == {"type": "subscribed", "id": "a", "seq": 0, "epoch": "boot-1"}
    assert [(e["seq"], e["data"]) for e in batch] == [(1, {"n": 0}), (2, {"n": 1}), (3, {"n": 2})]


async def test_v1_subscribers_get_one_frame_per_event_even_when_busy() -> None:
    hub, _ = make_hub()
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=False)
    for n in range(3):
        hub.publish("a", {"n": n})
    await asyncio.sleep(0)
    assert sink.frames == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_the_publisher_gets_no_echo_on_its_own_v1_subscription() -> None:
    hub, _ = make_hub()
    sub, sink, _ = attach(hub)
    other, other_sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=False)
    hub.subscribe(other, "a", v2=False)
    hub.publish("a", {"n": 1}, origin=sub)
    await asyncio.sleep(0)
    assert sink.frames == [] and other_sink.frames == [{"n": 1}]


async def test_a_backed_up_subscriber_does_not_stop_the_others() -> None:
    hub, _ = make_hub()
    slow, slow_sink, _ = attach(hub)
    fast, fast_sink, _ = attach(hub)
    for s in (slow, fast):
        hub.subscribe(s, "a", v2=True)
    slow_sink.backlog = HIGH_WATER + 1
    writer = asyncio.create_task(slow.run_writer())
    for n in range(5):
        hub.publish("a", {"n": n})
        await asyncio.sleep(0)
    assert len(fast_sink.frames) == 6
    assert slow_sink.frames == [] and len(slow.items) == 5
    slow_sink.backlog = 0  # the kernel takes the bytes: the writer catches up, coalesced
    await asyncio.sleep(0.05)
    assert slow_sink.frames[0]["type"] == "subscribed"
    assert [e["seq"] for e in slow_sink.frames[1]] == [1, 2, 3, 4, 5]
    hub.detach(slow)
    await writer


async def test_overflow_drops_the_oldest_and_tells_v2_the_gap() -> None:
    hub, _ = make_hub(queue=3)
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=True)
    sink.backlog = HIGH_WATER + 1
    writer = asyncio.create_task(sub.run_writer())
    for n in range(10):
        hub.publish("a", {"n": n})
        await asyncio.sleep(0)
    assert hub.stats.drops == 7
    sink.backlog = 0
    await asyncio.sleep(0.05)
    gap, *events = sink.frames[1]
    assert gap == {"type": "gap", "id": "a", "from": 1, "to": 7, "reason": "overflow"}
    assert [e["seq"] for e in events] == [8, 9, 10]
    hub.detach(sub)
    await writer


async def test_a_subscriber_that_stays_overflowed_is_closed() -> None:
    hub, clock = make_hub(queue=2, slow_close_s=5.0)
    sub, sink, closed = attach(hub)
    hub.subscribe(sub, "a", v2=True)
    sink.backlog = HIGH_WATER + 1
    writer = asyncio.create_task(sub.run_writer())
    for n in range(5):
        hub.publish("a", {"n": n})
    await asyncio.sleep(0.02)
    assert closed == []
    clock.now += 6.0
    await asyncio.wait_for(writer, 1.0)
    assert closed == ["slow"] and hub.stats.slow_closed == 1


async def test_since_replays_history_without_loss_or_duplicates() -> None:
    hub, _ = make_hub()
    for n in range(5):
        hub.publish("a", {"n": n})
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=True, since=2, epoch="boot-1")
    hub.publish("a", {"n": 5})
    await asyncio.sleep(0)
    subscribed, batch = sink.frames
    assert subscribed["seq"] == 5
    assert [e["seq"] for e in batch] == [3, 4, 5, 6]


async def test_since_older_than_history_gets_a_gap_then_what_is_held() -> None:
    hub, _ = make_hub(history_events=3)
    for n in range(6):
        hub.publish("a", {"n": n})
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=True, since=1)
    await asyncio.sleep(0)
    _, gap, batch = sink.frames
    assert gap == {"type": "gap", "id": "a", "from": 2, "to": 3, "reason": "history"}
    assert [e["seq"] for e in batch] == [4, 5, 6]


async def test_history_expires_with_age_and_empty_channels_are_freed() -> None:
    hub, clock = make_hub(history_seconds=60)
    hub.publish("a", {"n": 0})
    sub, _, _ = attach(hub)
    hub.subscribe(sub, "b", v2=False)
    clock.now += 30
    assert hub.sweep() == 0
    clock.now += 31
    assert hub.sweep() == 1
    assert list(hub.channels) == ["b"]  # held by its subscriber
    hub.detach(sub)
    assert hub.sweep() == 1 and hub.channels == {}


async def test_a_recreated_channel_has_a_new_epoch() -> None:
    hub, clock = make_hub(history_seconds=1)
    first = hub.publish("a", {"n": 0}).epoch
    clock.now += 2
    hub.sweep()
    assert hub.publish("a", {"n": 0}).epoch != first


async def test_a_detached_subscriber_leaves_every_channel_at_once() -> None:
    hub, _ = make_hub()
    sub, _, _ = attach(hub)
    for name in ("a", "b", "c"):
        hub.subscribe(sub, name, v2=True)
    assert hub.subscription_count() == 3
    hub.detach(sub)
    assert hub.subscription_count() == 0 and hub.subscribers == set()


async def test_under_heavy_fan_out_a_flush_is_held_briefly_so_events_coalesce() -> None:
    # The hub's clock stands still until the test moves it, so "just ran" holds however
    # slow the machine; the hold itself is a real (2 ms) timer of the loop.
    now = [100.0]
    hub = Hub(HubLimits(), boot="boot", clock=lambda: now[0])
    subs = [attach(hub) for _ in range(BIG_FLUSH)]
    for sub, _, _ in subs:
        hub.subscribe(sub, "a", v2=True)
    await asyncio.sleep(0)  # the `subscribed` replies: the first big flush, at once
    hub.publish("a", {"n": 1})
    hub.publish("a", {"n": 2})
    await asyncio.sleep(0)
    assert all(len(sink.frames) == 1 for _, sink, _ in subs)  # held: a big flush just ran
    now[0] += BIG_FLUSH_GAP_S * 2
    await asyncio.sleep(BIG_FLUSH_GAP_S * 3)
    for _, sink, _ in subs:
        assert [e["seq"] for e in sink.frames[1]] == [1, 2]


async def test_a_flush_to_few_subscribers_is_never_held() -> None:
    hub, _ = make_hub()
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=False)
    for n in range(3):
        hub.publish("a", {"n": n})
        await asyncio.sleep(0)
    assert sink.frames == [{"n": 0}, {"n": 1}, {"n": 2}]


# -- history in bytes --


def cost_of(data: dict[str, Any]) -> int:
    """What one event of `data` costs in history on a one-letter channel, seq < 10."""
    return event_cost(protocol.encode_envelope(b'"a"', 1, 42, protocol.dumps(data)))


def held(hub: Hub, name: str) -> list[int]:
    return [seq for seq, _, _ in hub.channels[name].history]


PAD = {"x": "y" * 1000}


async def test_history_is_bounded_in_bytes_per_channel_by_dropping_its_oldest() -> None:
    c = cost_of(PAD)
    hub, _ = make_hub(history_bytes=3 * c)
    for _ in range(9):
        hub.publish("a", PAD)
    assert held(hub, "a") == [7, 8, 9]
    assert hub.channels["a"].history_bytes == hub.history_bytes == 3 * c
    assert hub.stats.history_dropped_channel == 6


async def test_a_resume_across_history_dropped_for_bytes_gets_a_history_gap() -> None:
    hub, _ = make_hub(history_bytes=3 * cost_of(PAD))
    for _ in range(9):
        hub.publish("a", PAD)
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=True, since=2, epoch="boot-1")
    await asyncio.sleep(0)
    _, gap, batch = sink.frames
    assert gap == {"type": "gap", "id": "a", "from": 3, "to": 6, "reason": "history"}
    assert [e["seq"] for e in batch] == [7, 8, 9]


async def test_dropping_history_never_takes_an_event_from_a_subscribers_outbox() -> None:
    c = cost_of(PAD)
    hub, _ = make_hub(history_bytes=2 * c, history_total_bytes=3 * c)
    sub, sink, _ = attach(hub)
    hub.subscribe(sub, "a", v2=True)
    for _ in range(9):  # all in one loop iteration: all nine wait in the outbox
        hub.publish("a", PAD)
    assert held(hub, "a") == [8, 9]
    await asyncio.sleep(0)
    assert [e["seq"] for e in sink.frames[1]] == list(range(1, 10))


async def test_past_the_total_bound_the_channel_holding_the_most_loses_first() -> None:
    c = cost_of(PAD)
    hub, _ = make_hub(history_total_bytes=int(15.5 * c))
    for name, count in (("c", 2), ("b", 5), ("a", 8)):
        for _ in range(count):
            hub.publish(name, PAD)
    assert hub.history_bytes == 15 * c and hub.stats.history_dropped_total == 0
    hub.publish("a", PAD)  # 16 events: over the bound, cut to 15/16 of it
    assert held(hub, "a") == [3, 4, 5, 6, 7, 8, 9]
    assert held(hub, "b") == [1, 2, 3, 4, 5] and held(hub, "c") == [1, 2]
    assert hub.stats.history_dropped_total == 2
    assert hub.history_bytes == 14 * c <= 15.5 * c * SHED_TO


async def test_the_largest_channels_are_cut_to_one_level_and_a_quiet_one_keeps_its_own() -> None:
    c = cost_of(PAD)
    hub, _ = make_hub(history_total_bytes=int(14.5 * c))
    for name, count in (("a", 6), ("b", 6), ("c", 2)):
        for _ in range(count):
            hub.publish(name, PAD)
    hub.publish("c", PAD)  # the quiet channel pushes all history over the bound
    assert held(hub, "a") == held(hub, "b") == [2, 3, 4, 5, 6]
    assert held(hub, "c") == [1, 2, 3]
    assert hub.history_bytes == 13 * c


async def test_history_that_expires_gives_its_bytes_back() -> None:
    hub, clock = make_hub(history_seconds=60)
    hub.publish("a", PAD)
    clock.now += 30
    hub.publish("a", PAD)
    clock.now += 31
    hub.sweep()
    assert held(hub, "a") == [2] and hub.history_bytes == cost_of(PAD)
    clock.now += 60
    hub.sweep()
    assert hub.history_bytes == 0 and hub.channels == {}


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
    hub, clock = make_hub(history_total_bytes=8000, **limits)
    for op, name, n in steps:
        if op == "publish":
            hub.publish(name, {"x": "y" * n})
        elif op == "wait":
            clock.now += n
        else:
            hub.sweep()
        total = 0
        for ch in hub.channels.values():
            seqs = [seq for seq, _, _ in ch.history]
            assert seqs == list(range(ch.first_held(), ch.first_held() + len(seqs)))
            assert not seqs or seqs[-1] <= ch.seq
            assert ch.history_bytes == sum(event_cost(e) for _, _, e in ch.history) <= 5000
            assert len(seqs) <= 8
            total += ch.history_bytes
        assert hub.history_bytes == total <= 8000


# -- pinned channels and who may open a channel --

PINNED = installation_channels("dialjam")


async def test_pinned_channels_exist_from_the_start_and_are_never_freed() -> None:
    hub, clock = make_hub(PINNED, history_seconds=1)
    assert set(hub.channels) == PINNED
    epoch = hub.channels["dialjam:control"].epoch
    hub.publish("dialjam:control", {"event": "command", "name": "panic"})
    clock.now += 2
    assert hub.sweep() == 0
    assert set(hub.channels) == PINNED and hub.channels["dialjam:control"].epoch == epoch


async def test_pinned_channels_do_not_count_against_max_channels() -> None:
    hub, _ = make_hub(PINNED, max_channels=2)
    hub.publish("one", {})
    hub.publish("two", {})
    with pytest.raises(ProtocolError) as refused:
        hub.publish("three", {})
    assert refused.value.code == "too_many_channels"
    assert hub.publish("dialjam:control", {"event": "command"}).seq == 1


async def test_a_crowd_of_new_channels_cannot_squat_out_the_control_channel() -> None:
    hub, _ = make_hub(PINNED, max_channels=100)
    for n in range(100):
        hub.publish(f"squat-{n}", {"n": n})
    hub.sweep()  # they hold history, so none is freed
    billboard, sink, _ = attach(hub)
    hub.subscribe(billboard, "dialjam:control", v2=False, create=False)  # a reconnect
    hub.publish("dialjam:control", {"event": "command", "name": "panic"}, create=False)
    await asyncio.sleep(0)
    assert sink.frames == [{"event": "command", "name": "panic"}]


@pytest.mark.parametrize("action", ["publish", "subscribe"])
async def test_without_create_an_unknown_channel_is_refused_and_not_made(action: str) -> None:
    hub, _ = make_hub(PINNED)
    sub, _, _ = attach(hub)
    with pytest.raises(ProtocolError) as refused:
        if action == "publish":
            hub.publish("mine", {}, create=False)
        else:
            hub.subscribe(sub, "mine", v2=True, create=False)
    assert refused.value.code == "unknown_channel"
    assert "'mine'" in refused.value.message and "token" in refused.value.message
    assert "mine" not in hub.channels and sub.subscriptions == {}


async def test_without_create_a_channel_someone_opened_can_be_used() -> None:
    hub, _ = make_hub()
    opener, sink, _ = attach(hub)
    hub.subscribe(opener, "tower-b", v2=False)  # a token holder opens it
    hub.publish("tower-b", {"n": 1}, create=False)
    anyone, other_sink, _ = attach(hub)
    hub.subscribe(anyone, "tower-b", v2=False, create=False)
    hub.publish("tower-b", {"n": 2}, create=False)
    await asyncio.sleep(0)
    assert sink.frames == [{"n": 1}, {"n": 2}] and other_sink.frames == [{"n": 2}]
