"""Relays sharing channels through a real redis-server on a free port (relay/backplane.py):
two relays in this process, each with its own fan-out, both on one Redis."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from relay.backplane import log_key, meta_key
from tests.support.redis import RedisServer
from tests.support.relay import OPERATOR, Inbox, RunningRelay, StartRelay, recv, send, until


async def pair(start_relay: StartRelay, redis: RedisServer, **settings: Any) -> list[RunningRelay]:
    return [await start_relay(backplane=redis.url, **settings) for _ in range(2)]


async def subscriber(relay: RunningRelay, **frame: Any) -> Inbox:
    ws = await relay.connect()
    await send(ws, {"type": "subscriber", "id": "dialjam", "v": 2, **frame})
    inbox = Inbox(ws)
    assert (await inbox.next())["type"] == "subscribed"
    return inbox


async def publish(ws: aiohttp.ClientWebSocketResponse, n: int) -> dict[str, Any]:
    """A seed digit with an ack; the answer (ack or error)."""
    data = {"caller_id": "c-backplane", "command": str(n % 10)}
    await send(ws, {"type": "publisher", "id": "dialjam", "ack": True, "data": data})
    answer: dict[str, Any] = await recv(ws)
    return answer


async def test_events_published_on_one_relay_reach_v2_subscribers_of_both_once_in_order(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server)
    inboxes = [await subscriber(a), await subscriber(b)]
    pub = await a.publisher()
    acks = [await publish(pub, n) for n in range(20)]
    assert [ack["seq"] for ack in acks] == list(range(1, 21))
    assert len({ack["epoch"] for ack in acks}) == 1
    for inbox in inboxes:
        events = await inbox.events(20)
        assert [e["seq"] for e in events] == list(range(1, 21))
    # One order whichever relay takes the event: a publish on b follows on.
    assert (await publish(await b.publisher(), 20))["seq"] == 21


async def test_a_subscriber_resumes_on_the_other_relay_with_exactly_what_it_missed(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server)
    inbox = await subscriber(a)
    pub = await a.publisher()
    for n in range(5):
        epoch = (await publish(pub, n))["epoch"]
    assert [e["seq"] for e in await inbox.events(5)] == [1, 2, 3, 4, 5]
    await inbox.ws.close()
    for n in range(5, 9):
        await publish(pub, n)
    resumed = await subscriber(b, since=5, epoch=epoch)
    assert [e["seq"] for e in await resumed.events(4)] == [6, 7, 8, 9]
    await publish(pub, 9)
    assert (await resumed.next())["seq"] == 10


async def test_redis_carries_each_event_once_per_relay_and_keeps_history_within_bounds(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server, history_events=5)
    subs = [await subscriber(relay) for relay in (a, b) for _ in range(10)]
    client = aioredis.from_url(redis_server.url)  # type: ignore[no-untyped-call]
    try:
        before = await client.info("stats")
        pub = await a.publisher()
        for n in range(12):
            await publish(pub, n)
        for inbox in subs:
            assert len(await inbox.events(12)) == 12
        after = await client.info("stats")
        # 20 subscribers on two relays: Redis sent each event to each relay, once.
        sent = after["total_net_output_bytes"] - before["total_net_output_bytes"]
        assert await client.xlen(log_key("dialjam")) == 5
        assert int(await client.hget(meta_key("dialjam"), "seq")) == 12
    finally:
        await client.aclose()
    per_event = len(b'{"caller_id":"c-backplane","command":"0"}') + 60
    assert sent < 12 * per_event * 2 * 3, sent  # far below 20 subscribers' worth
    late = await subscriber(b, since=0, epoch=b.state.hub.channels["dialjam"].epoch)
    gap = await late.next()
    assert (gap["type"], gap["from"], gap["to"]) == ("gap", 1, 7)
    assert [e["seq"] for e in await late.events(5)] == [8, 9, 10, 11, 12]


async def test_without_redis_publishers_get_an_error_and_health_says_why_then_it_resumes(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server)
    inbox = await subscriber(b)
    pub = await a.publisher()
    acked = await publish(pub, 1)
    assert acked["seq"] == 1
    acked_epoch = acked["epoch"]
    # Delivered before Redis dies: a kill -9 resets b's connection, and the kernel drops
    # what b had not read yet, so racing the kill would test the kernel, not the relay.
    first = await inbox.next()
    redis_server.kill()
    answer = await publish(pub, 2)
    assert (answer["type"], answer["code"]) == ("error", "backplane_unavailable")
    frame = {"type": "publisher", "id": "dialjam", "ref": 12}
    await send(pub, {**frame, "data": {"caller_id": "c-backplane", "command": "2"}})
    answer = await recv(pub)  # the publisher hears which frame was refused
    assert (answer["code"], answer["ref"]) == ("backplane_unavailable", 12)
    async with a.session.post(
        f"{a.url}/publish/dialjam",
        json={"caller_id": "c-backplane", "command": "3"},
        headers={"Authorization": "Bearer publisher-secret-token"},
    ) as resp:
        assert resp.status == 503 and (await resp.json())["code"] == "backplane_unavailable"

    async def degraded() -> bool:
        health = await b.healthz()
        return health["status"] == "degraded" and health["backplane"]["why"] is not None

    await until(degraded)
    async with b.session.get(f"{b.url}/metrics") as resp:
        assert "dialjam_relay_backplane_up 0.0" in await resp.text()
    redis_server.start()  # a new, empty Redis on the same port

    async def listening() -> bool:
        return bool(
            (await a.healthz())["backplane"]["ok"] and (await b.healthz())["backplane"]["ok"]
        )

    await until(listening, timeout=30.0)
    short = {"type": "publisher", "id": "dialjam", "ack": "ref", "ref": 13}
    await send(pub, {**short, "data": {"caller_id": "c-backplane", "command": "4"}})
    assert await recv(pub) == {"type": "ack", "ref": 13}  # held by Redis: the ref alone
    answer = await publish(pub, 5)
    assert answer["type"] == "ack", answer
    told, event, fifth = await inbox.events(3)
    assert (first["seq"], first["data"]["command"]) == (1, "1")
    # That Redis kept nothing (no append-only file here): the channel's history began
    # again, and the subscriber is told so before the new epoch's first event.
    assert (told["type"], told["seq"]) == ("subscribed", 0) and told["epoch"] == answer["epoch"]
    assert told["epoch"] != first.get("epoch", acked_epoch)
    assert (event["seq"], event["data"]["command"]) == (1, "4")  # 2 and 3 were never sent
    assert (fifth["seq"], fifth["data"]["command"]) == (2, "5")


async def test_a_session_minted_on_one_relay_plays_on_the_other(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server)
    inbox = await subscriber(a)
    session = await a.caller_session()
    keypad = await b.connect()
    frame = {"type": "publisher", "id": "dialjam", "session": session["session"], "ack": True}
    await send(keypad, {**frame, "data": {"event": "digit", "digit": "5"}})
    assert (await recv(keypad))["type"] == "ack"
    event = await inbox.next()
    assert event["data"]["caller"] == session["caller"] and event["data"]["digit"] == "5"


async def test_a_callers_rate_holds_across_relays_not_once_per_relay(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server, caller_rate=2.0)  # a burst of 4
    session = await a.caller_session()
    statuses = []
    for n in range(10):
        relay = (a, b)[n % 2]
        frame = {"type": "publisher", "session": session["session"]}
        body = {**frame, "data": {"event": "digit", "digit": str(n)}}
        async with relay.session.post(f"{relay.url}/publish/dialjam", json=body) as resp:
            statuses.append(resp.status)
    assert statuses.count(200) <= 5, statuses  # 4 in the burst, maybe 1 refilled
    assert set(statuses) == {200, 429}


async def test_an_operators_command_on_one_relay_reaches_the_billboard_on_the_other(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server)
    board = await b.connect(headers={"Authorization": "Bearer billboard-secret-token"})
    await send(board, {"type": "subscriber", "id": "dialjam:control", "v": 2})
    inbox = Inbox(board)
    assert (await inbox.next())["type"] == "subscribed"
    console = await a.publisher(OPERATOR)
    command = {"event": "command", "name": "panic", "args": {}}
    await send(console, {"type": "publisher", "id": "dialjam:control", "data": command})
    assert (await inbox.next())["data"] == command


async def test_a_keypad_that_comes_back_on_the_other_relay_is_not_made_to_leave(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    # No sticky sessions: a phone changing networks may come back on any relay.
    a, b = await pair(start_relay, redis_server, session_grace_s=0.3)
    inbox = await subscriber(a)
    session = await a.caller_session()
    frame = {"type": "publisher", "id": "dialjam", "session": session["session"]}
    keypad = await a.connect()
    await send(keypad, {**frame, "data": {"event": "join"}})
    assert (await inbox.next())["data"]["event"] == "join"
    await keypad.close()
    keypad = await b.connect()  # back within the grace, on the other relay
    await send(keypad, {**frame, "data": {"event": "digit", "digit": "1"}})
    assert (await inbox.next())["data"]["event"] == "digit"
    with pytest.raises(TimeoutError):
        await inbox.next(timeout=1.2)  # four graces: a's timer found the keypad on b
    await keypad.close()  # gone for good: b says the leave
    leave = (await inbox.next())["data"]
    assert leave == {"event": "leave", "caller": session["caller"], "reason": "closed"}


async def test_a_batch_spanning_channels_is_sequenced_per_channel_in_one_round_trip(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server)
    backplane = a.state.backplane
    assert backplane is not None
    # Queued together, sent together: one script call per channel in one pipeline.
    futures = [
        backplane.publish(name, b'{"n":%d}' % n)
        for n in range(6)
        for name in ("dialjam:state", "dialjam:control")
    ]
    answers = await asyncio.gather(*futures)
    assert [seq for seq, _ in answers[0::2]] == [1, 2, 3, 4, 5, 6]
    assert [seq for seq, _ in answers[1::2]] == [1, 2, 3, 4, 5, 6]
    assert {epoch for _, epoch in answers[0::2]} == {b.state.hub.channels["dialjam:state"].epoch}


async def test_a_redis_that_stops_answering_is_noticed_and_left_until_it_answers_again(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    a, b = await pair(start_relay, redis_server)
    inbox = await subscriber(b)
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # frozen: its sockets stay open
    try:

        async def lost() -> bool:
            shared = (await b.healthz())["backplane"]
            return not shared["ok"] and "event stream" in (shared["why"] or "")

        await until(lost, timeout=30.0)  # the watchdog's pings went unanswered
    finally:
        redis_server.process.send_signal(signal.SIGCONT)

    async def back() -> bool:
        return bool((await b.healthz())["backplane"]["ok"])

    await until(back, timeout=30.0)
    pub = await a.publisher()
    answer = await publish(pub, 1)
    assert answer["type"] == "ack", answer
    assert (await inbox.next())["seq"] == answer["seq"]
