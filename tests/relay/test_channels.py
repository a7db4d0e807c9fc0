"""Fan-out, outboxes and history, against a fake transport (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from relay.channels import BIG_FLUSH, BIG_FLUSH_GAP_S, HIGH_WATER, Hub, HubLimits, Subscriber


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


def make_hub(**limits: Any) -> tuple[Hub, Clock]:
    clock = Clock()
    return Hub(HubLimits(**limits), clock=clock, wall_ms=lambda: 42, boot="boot"), clock


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
    hub = Hub(HubLimits(), boot="boot")  # the real clock: the hold is a real timer
    subs = [attach(hub) for _ in range(BIG_FLUSH)]
    for sub, _, _ in subs:
        hub.subscribe(sub, "a", v2=True)
    await asyncio.sleep(0)  # the `subscribed` replies: the first big flush, at once
    hub.publish("a", {"n": 1})
    hub.publish("a", {"n": 2})
    await asyncio.sleep(0)
    assert all(len(sink.frames) == 1 for _, sink, _ in subs)  # held: a big flush just ran
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
