"""The relay over real sockets: a server on a free port, real aiohttp clients."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import orjson
import pytest

from relay.config import TwilioConfig
from relay.contract.events import is_caller_id
from tests.support.relay import (
    BILLBOARD,
    OPERATOR,
    PUBLISHER,
    Inbox,
    RunningRelay,
    StartRelay,
    recv,
    send,
    until,
)

SEED_DIGIT = {"caller_id": "4155551212", "command": "5"}
# A token holder may open channels beyond the installation's; anyone may then use them.
AS_BILLBOARD = {"headers": {"Authorization": f"Bearer {BILLBOARD}"}}


@pytest.fixture(name="start_relay")
async def start_open_relay(start_relay: StartRelay) -> StartRelay:
    """The hub's fan-out, seen through a rehearsal relay (``open``: anyone may publish
    on any channel, as in 2010); who may publish what is tested in test_trust.py."""

    async def start(**settings: Any) -> RunningRelay:
        settings.setdefault("open", True)
        return await start_relay(**settings)

    return start


async def test_a_seed_publisher_reaches_seed_subscribers_with_the_number_pseudonymised(
    relay: RunningRelay,
) -> None:
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": "dialjam"})
    pub = await relay.publisher()  # a Tropo script holds the publisher token
    await until(lambda: _subscribers(relay, 1))
    await send(pub, {"type": "publisher", "id": "dialjam", "data": SEED_DIGIT})
    msg = await asyncio.wait_for(sub.receive(), 2)
    seen = orjson.loads(msg.data)
    # Still the seed's shape, so a 2010 page reads it; the number never leaves the door.
    assert seen["command"] == "5" and seen["display"] == "…12"
    assert is_caller_id(seen["caller_id"]) and "4155551212" not in msg.data


async def test_seed_clients_connect_at_the_root_and_browsers_get_a_page(
    relay: RunningRelay,
) -> None:
    sub = await relay.connect("/")
    await send(sub, {"type": "subscriber", "id": "dialjam"})
    pub = await relay.connect("/?token=" + PUBLISHER)  # a seed client changes only its URL
    await until(lambda: _subscribers(relay, 1))
    await send(pub, {"type": "publisher", "id": "dialjam", "data": SEED_DIGIT})
    assert (await recv(sub))["command"] == "5"
    async with relay.session.get(relay.url + "/") as resp:
        assert resp.status == 200
        assert "text/html" in resp.headers["Content-Type"]


async def test_channels_are_isolated(relay: RunningRelay) -> None:
    a, b = await relay.connect(**AS_BILLBOARD), await relay.connect(**AS_BILLBOARD)
    await send(a, {"type": "subscriber", "id": "tower-a"})
    await send(b, {"type": "subscriber", "id": "tower-b"})
    pub = await relay.connect()
    await until(lambda: _subscribers(relay, 2))
    await send(pub, {"type": "publisher", "id": "tower-a", "data": {"n": "a"}})
    await send(pub, {"type": "publisher", "id": "tower-b", "data": {"n": "b"}})
    assert await recv(a) == {"n": "a"}
    assert await recv(b) == {"n": "b"}
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(a.receive(), 0.2)


async def test_one_connection_subscribes_to_several_channels_and_publishes_many(
    relay: RunningRelay,
) -> None:
    conn = await relay.connect(**AS_BILLBOARD)
    listener = await relay.connect()
    for name in ("one", "two"):
        await send(conn, {"type": "subscriber", "id": name})
        await send(listener, {"type": "subscriber", "id": name})
    await until(lambda: _subscribers(relay, 4))
    other = await relay.connect()
    await send(other, {"type": "publisher", "id": "one", "data": {"x": 1}})
    await send(other, {"type": "publisher", "id": "two", "data": {"x": 2}})
    assert [await recv(conn), await recv(conn)] == [{"x": 1}, {"x": 2}]
    assert [await recv(listener), await recv(listener)] == [{"x": 1}, {"x": 2}]
    for n in range(20):  # and the subscriber may publish too
        await send(conn, {"type": "publisher", "id": "one", "data": {"n": n}})
    got = [await recv(listener) for _ in range(20)]
    assert got == [{"n": n} for n in range(20)]
    # The 2010 relay never echoed to the publisher: its own v1 subscription stays quiet.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(conn.receive(), 0.2)


async def test_500_concurrent_publishers_reach_5_subscribers_exactly_once_in_order(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(connections_per_address=0)  # all 505 come from 127.0.0.1
    subs = [await relay.connect(**AS_BILLBOARD) for _ in range(5)]
    for ws in subs:
        await send(ws, {"type": "subscriber", "id": "crowd"})
    await until(lambda: _subscribers(relay, 5))
    per_publisher = 4
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        pubs = await asyncio.gather(*(session.ws_connect(relay.ws_url) for _ in range(500)))

        async def publish(p: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            for n in range(per_publisher):
                await send(ws, {"type": "publisher", "id": "crowd", "data": {"p": p, "n": n}})
                await asyncio.sleep(random.random() * 0.01)

        async def collect(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, int]]:
            return [await recv(ws, 10) for _ in range(500 * per_publisher)]

        collecting = [asyncio.create_task(collect(ws)) for ws in subs]
        await asyncio.gather(*(publish(p, ws) for p, ws in enumerate(pubs)))
        received = await asyncio.gather(*collecting)
        for ws in pubs:
            await ws.close()
    for events in received:
        seen = {(e["p"], e["n"]) for e in events}
        assert len(seen) == len(events) == 500 * per_publisher  # each once
        for p in range(500):
            assert [e["n"] for e in events if e["p"] == p] == list(range(per_publisher))


async def test_v2_subscriber_gets_subscribed_then_envelopes_with_seq_by_one(
    relay: RunningRelay,
) -> None:
    ws = await relay.connect()
    inbox = Inbox(ws)
    await send(ws, {"type": "subscriber", "id": "room", "v": 2})
    subscribed = await inbox.next()
    assert subscribed["type"] == "subscribed" and subscribed["seq"] == 0
    assert isinstance(subscribed["epoch"], str) and subscribed["epoch"]
    pub = await relay.connect()
    for n in range(3):
        await send(pub, {"type": "publisher", "id": "room", "data": {"event": "digit", "n": n}})
    events = await inbox.events(3)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert all(e["type"] == "event" and e["id"] == "room" for e in events)
    assert [e["data"]["n"] for e in events] == [0, 1, 2]
    assert all(isinstance(e["ts"], int) and e["ts"] > 1_600_000_000_000 for e in events)


async def test_v2_resume_after_a_disconnect_has_no_loss_and_no_duplicate(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(rate=0)
    ws = await relay.connect()
    inbox = Inbox(ws)
    await send(ws, {"type": "subscriber", "id": "room", "v": 2})
    epoch = (await inbox.next())["epoch"]
    pub = await relay.connect()
    publishing = asyncio.create_task(_publish_numbers(pub, "room", 300, pause=0.001))
    seen: list[int] = []
    while len(seen) < 50:
        seen.append((await inbox.next())["seq"])
    await ws.close()  # drop the line mid-stream, while events keep coming
    await asyncio.sleep(0.05)
    ws = await relay.connect()
    inbox = Inbox(ws)
    await send(ws, {"type": "subscriber", "id": "room", "v": 2, "since": seen[-1], "epoch": epoch})
    assert (await inbox.next())["type"] == "subscribed"
    await publishing
    while len(seen) < 300:
        msg = await inbox.next()
        assert msg["type"] == "event", msg
        seen.append(msg["seq"])
    assert seen == list(range(1, 301))


async def test_since_from_another_epoch_first_gets_a_gap(relay: RunningRelay) -> None:
    pub = await relay.connect()
    await _publish_numbers(pub, "room", 3)
    ws = await relay.connect()
    inbox = Inbox(ws)
    await send(ws, {"type": "subscriber", "id": "room", "v": 2, "since": 40, "epoch": "old"})
    assert (await inbox.next())["type"] == "subscribed"
    gap = await inbox.next()
    assert gap["type"] == "gap" and gap["reason"] == "epoch" and gap["id"] == "room"
    assert [m["seq"] for m in await inbox.events(3)] == [1, 2, 3]


async def test_since_older_than_the_history_gets_a_gap_saying_what_is_lost(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(history_events=10)
    pub = await relay.connect()
    await _publish_numbers(pub, "room", 25, ack_last=True)
    ws = await relay.connect()
    inbox = Inbox(ws)
    await send(ws, {"type": "subscriber", "id": "room", "v": 2, "since": 5})
    assert (await inbox.next())["seq"] == 25
    assert await inbox.next() == {
        "type": "gap",
        "id": "room",
        "from": 6,
        "to": 15,
        "reason": "history",
    }
    assert [m["seq"] for m in await inbox.events(10)] == list(range(16, 26))


async def test_a_publisher_asking_for_ack_gets_the_seq(relay: RunningRelay) -> None:
    pub = await relay.connect()
    await send(pub, {"type": "publisher", "id": "room", "data": {"a": 1}, "ack": True})
    await send(pub, {"type": "publisher", "id": "room", "data": {"a": 2}, "ack": True})
    first, second = await recv(pub), await recv(pub)
    assert (first["type"], first["id"], first["seq"]) == ("ack", "room", 1)
    assert second["seq"] == 2 and second["epoch"] == first["epoch"]


async def test_a_publish_with_a_ref_hears_it_back_in_its_ack_or_its_error(
    relay: RunningRelay,
) -> None:
    pub = await relay.connect()
    await send(pub, {"type": "publisher", "id": "room", "data": {}, "ack": True, "ref": 7})
    await send(pub, {"type": "publisher", "id": "dialjam:control", "data": {}, "ref": 8})
    ack, error = await recv(pub), await recv(pub)
    assert (ack["type"], ack["seq"], ack["ref"]) == ("ack", 1, 7)
    assert (error["type"], error["code"], error["ref"]) == ("error", "unauthorised", 8)
    await send(pub, {"type": "publisher", "id": "room", "data": {}, "ack": "ref", "ref": 9})
    assert await recv(pub) == {"type": "ack", "ref": 9}  # asked short: the ref alone


@pytest.mark.parametrize(
    ("channel", "token", "allowed"),
    [
        ("dialjam:control", None, False),
        ("dialjam:control", BILLBOARD, False),
        ("dialjam:control", OPERATOR, True),
        ("dialjam:state", None, False),
        ("dialjam:state", OPERATOR, False),
        ("dialjam:state", BILLBOARD, True),
        ("dialjam:control", "guess", False),
    ],
)
async def test_control_and_state_channels_accept_only_their_token(
    relay: RunningRelay, channel: str, token: str | None, allowed: bool
) -> None:
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": channel})
    await until(lambda: _subscribers(relay, 1))
    pub = await relay.connect()
    frame: dict[str, Any] = {"type": "publisher", "id": channel, "data": {"event": "command"}}
    if token:
        frame["token"] = token
    await send(pub, frame)
    if allowed:
        forwarded = await recv(sub)
        assert forwarded == {"event": "command"}  # the token is never forwarded
    else:
        error = await recv(pub)
        assert error["type"] == "error" and error["code"] == "unauthorised"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sub.receive(), 0.2)


async def test_a_bearer_header_on_the_upgrade_grants_the_role(relay: RunningRelay) -> None:
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": "dialjam:control"})
    await until(lambda: _subscribers(relay, 1))
    pub = await relay.connect(headers={"Authorization": f"Bearer {OPERATOR}"})
    await send(pub, {"type": "publisher", "id": "dialjam:control", "data": {"name": "panic"}})
    assert await recv(sub) == {"name": "panic"}


async def test_tokens_never_reach_the_log(
    relay: RunningRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    pub = await relay.connect()
    await send(pub, {"type": "publisher", "id": "x:control", "data": {"k": "4155551212"}})
    await send(pub, {"type": "publisher", "id": "x:control", "data": {}, "token": "wrong-tok"})
    await send(pub, {"type": "publisher", "id": "x:state", "data": {}, "token": OPERATOR})
    for _ in range(3):
        assert (await recv(pub))["code"] == "unauthorised"
    text = caplog.text
    assert "unauthorised" in text
    for secret in (OPERATOR, BILLBOARD, "wrong-tok", "4155551212"):
        assert secret not in text


BAD_FRAMES: list[tuple[str, str | bytes]] = [
    ("bad_json", "{not json"),
    ("not_object", "[1, 2, 3]"),
    ("bad_type", '{"id": "room"}'),
    ("bad_type", '{"type": 12, "id": "room"}'),
    ("unknown_type", '{"type": "shout", "id": "room"}'),
    ("bad_id", '{"type": "subscriber"}'),
    ("bad_id", '{"type": "subscriber", "id": "no spaces allowed"}'),
    ("bad_id", '{"type": "subscriber", "id": "' + "x" * 65 + '"}'),
    ("bad_data", '{"type": "publisher", "id": "room", "data": "5"}'),
    ("binary", b"\x00\x01binary"),
    ("too_large", '{"type":"publisher","id":"dialjam","data":{"x":"' + "y" * 5000 + '"}}'),
]


@pytest.mark.parametrize(("code", "frame"), BAD_FRAMES, ids=[c for c, _ in BAD_FRAMES])
async def test_bad_input_gets_its_error_and_everyone_is_still_served(
    relay: RunningRelay, code: str, frame: str | bytes
) -> None:
    bystander = await relay.connect()
    await send(bystander, {"type": "subscriber", "id": "room"})
    await until(lambda: _subscribers(relay, 1))
    bad = await relay.connect()
    if isinstance(frame, bytes):
        await bad.send_bytes(frame)
    else:
        await bad.send_str(frame)
    error = await recv(bad)
    assert error["type"] == "error" and error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    # The same connection still works, and so does everyone else.
    await send(bad, {"type": "publisher", "id": "room", "data": {"after": code}})
    assert await recv(bystander) == {"after": code}
    await send(bad, {"type": "ping"})
    assert await recv(bad) == {"type": "pong"}
    assert (await relay.healthz())["errors"][code] == 1


async def test_token_holders_may_send_up_to_64_kib(relay: RunningRelay) -> None:
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": "dialjam:state"})
    await until(lambda: _subscribers(relay, 1))
    pub = await relay.connect()
    big = {"lit": "x" * 60_000}
    await send(pub, {"type": "publisher", "id": "dialjam:state", "data": big, "token": BILLBOARD})
    assert await recv(sub) == big


async def test_a_frame_over_the_hard_cap_closes_the_connection_with_1009(
    relay: RunningRelay,
) -> None:
    bystander = await relay.connect()
    ws = await relay.connect()
    await ws.send_str('{"type":"ping","pad":"' + "x" * 70_000 + '"}')
    msg = await asyncio.wait_for(ws.receive(), 3)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1009
    await send(bystander, {"type": "ping"})
    assert await recv(bystander) == {"type": "pong"}


@pytest.mark.timing
async def test_a_flood_is_rate_limited_but_the_connection_stays(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(rate=10, burst=5)
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": "room"})
    await until(lambda: _subscribers(relay, 1))
    flood = await relay.connect()
    for n in range(50):
        await send(flood, {"type": "publisher", "id": "room", "data": {"n": n}})
    error = await recv(flood)
    assert error["code"] == "rate_limited"
    got = []
    with pytest.raises(asyncio.TimeoutError):
        while True:
            got.append(await recv(sub, 0.3))
    assert 4 <= len(got) <= 8  # the burst (plus what refilled), never all 50
    await asyncio.sleep(0.3)  # the bucket refills: the same connection goes on
    await send(flood, {"type": "publisher", "id": "room", "data": {"n": "later"}})
    assert await recv(sub) == {"n": "later"}
    health = await relay.healthz()
    assert health["errors"]["rate_limited"] >= 40


async def test_an_operator_token_lifts_the_rate_limit(start_relay: StartRelay) -> None:
    relay = await start_relay(rate=10, burst=5)
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": "dialjam:control"})
    await until(lambda: _subscribers(relay, 1))
    op = await relay.connect(headers={"Authorization": f"Bearer {OPERATOR}"})
    for n in range(50):
        await send(op, {"type": "publisher", "id": "dialjam:control", "data": {"n": n}})
    assert [await recv(sub) for _ in range(50)] == [{"n": n} for n in range(50)]


async def test_healthz_counts_return_to_zero_after_clients_close(relay: RunningRelay) -> None:
    clients = [await relay.connect(**AS_BILLBOARD) for _ in range(6)]
    for n, ws in enumerate(clients):
        await send(ws, {"type": "subscriber", "id": f"ch{n % 3}", "v": 2})
        await send(ws, {"type": "subscriber", "id": "all"})
    await until(lambda: _subscribers(relay, 12))
    health = await relay.healthz()
    assert health["connections"] == 6 and health["channels"] == 4
    assert health["websockets"] == {"relay": 6}
    # No billboard listens to the installation's channel: callers would reach nobody.
    assert health["status"] == "degraded" and health["billboard"] == {"subscribed": 0}
    assert health["uptime_s"] >= 0
    assert {"events_per_s", "drops"} <= health.keys()
    for ws in clients:
        await ws.close()
    await until(
        lambda: _health(
            relay, lambda h: (h["connections"], h["subscribers"], h["channels"]) == (0, 0, 0)
        )
    )


@pytest.mark.timing
async def test_events_per_second_is_measured(start_relay: StartRelay) -> None:
    relay = await start_relay(rate=0)
    pub = await relay.connect()
    for _ in range(5):
        await _publish_numbers(pub, "room", 20, ack_last=True)
        await asyncio.sleep(0.25)
    await until(lambda: _health(relay, lambda h: h["events_per_s"] > 10), timeout=4)


async def test_http_publish_returns_the_seq_and_reaches_subscribers(relay: RunningRelay) -> None:
    ws = await relay.connect()
    inbox = Inbox(ws)
    await send(ws, {"type": "subscriber", "id": "room", "v": 2})
    await inbox.next()
    async with relay.session.post(f"{relay.url}/publish/room", json=SEED_DIGIT) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert (body["type"], body["seq"]) == ("ack", 1)
    event = await inbox.next()
    assert event["data"] == SEED_DIGIT and event["seq"] == 1
    frame = {"type": "publisher", "id": "ignored", "data": {"event": "digit"}}
    async with relay.session.post(f"{relay.url}/publish/room", json=frame) as resp:
        assert (await resp.json())["seq"] == 2
    assert (await inbox.next())["data"] == {"event": "digit"}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        ("/publish/dialjam", b"{oops", {}, 400, "bad_json"),
        ("/publish/dialjam", b"[1]", {}, 400, "not_object"),
        ("/publish/bad%20name", b"{}", {}, 400, "bad_id"),
        ("/publish/dialjam", b'{"x":"' + b"y" * 5000 + b'"}', {}, 413, "too_large"),
        ("/publish/dialjam:control", b"{}", {}, 401, "unauthorised"),
        ("/publish/dialjam:control", b"{}", {"Authorization": "Bearer nope"}, 401, "unauthorised"),
        (
            "/publish/dialjam:state",
            b"{}",
            {"Authorization": f"Bearer {OPERATOR}"},
            401,
            "unauthorised",
        ),
        (
            "/publish/dialjam:control",
            b"{}",
            {"Authorization": f"Bearer {OPERATOR}"},
            200,
            None,
        ),  # opening one needs a token
        ("/publish/newly", b"{}", {"Authorization": f"Bearer {BILLBOARD}"}, 200, None),
    ],
)
async def test_http_publish_answers_bad_requests_with_a_json_error(
    relay: RunningRelay,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    async with relay.session.post(relay.url + path, data=body, headers=headers) as resp:
        assert resp.status == status
        answer = await resp.json()
    if code:
        assert answer["type"] == "error" and answer["code"] == code


async def test_metrics_are_prometheus_text_with_counts_and_latency(relay: RunningRelay) -> None:
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": "room"})
    pub = await relay.connect()
    await until(lambda: _subscribers(relay, 1))
    await send(pub, {"type": "publisher", "id": "room", "data": {}})
    await send(pub, "nonsense")
    await recv(sub)
    async with relay.session.get(relay.url + "/metrics") as resp:
        text = await resp.text()
    assert "dialjam_relay_connections 2.0" in text
    assert 'dialjam_relay_websockets{kind="relay"} 2.0' in text
    assert "dialjam_relay_events_published_total 1.0" in text
    assert "dialjam_relay_events_delivered_total 1.0" in text
    assert 'dialjam_relay_errors_total{code="not_object"} 1.0' in text
    assert "dialjam_relay_fanout_latency_seconds_count 1.0" in text


async def test_the_installations_and_gateways_channels_exist_from_the_start(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(twilio=TwilioConfig(channel="tower"))
    for name in ("dialjam", "tower"):
        for suffix in ("", ":state", ":control", ":callers"):
            assert name + suffix in relay.state.hub.channels
    assert (await relay.healthz())["channels_held"] == 8


async def test_history_bytes_and_drops_show_in_healthz_and_metrics(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(history_bytes=4000, rate=0)
    pub = await relay.connect()
    for _ in range(5):
        await send(pub, {"type": "publisher", "id": "room", "data": {"x": "y" * 1500}})
    await until(lambda: _health(relay, lambda h: h["history_dropped"]["channel_bytes"] >= 3))
    health = await relay.healthz()
    assert 1500 < health["history_bytes"] <= 4000
    assert health["history_dropped"] == {"channel_bytes": 3, "total_bytes": 0}
    async with relay.session.get(relay.url + "/metrics") as resp:
        text = await resp.text()
    assert f"dialjam_relay_history_bytes {float(health['history_bytes'])}" in text
    assert 'dialjam_relay_history_dropped_total{bound="channel"} 3.0' in text
    assert 'dialjam_relay_history_dropped_total{bound="total"} 0.0' in text


async def test_static_files_never_leave_the_web_folder(relay: RunningRelay) -> None:
    async with relay.session.get(relay.url + "/index.html") as resp:
        assert resp.status == 200
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/nothing-here.js"):
        async with relay.session.get(relay.url + path) as resp:
            assert resp.status == 404, path


# -- helpers --


async def _subscribers(relay: RunningRelay, n: int) -> bool:
    return relay.state.hub.subscription_count() == n


async def _health(relay: RunningRelay, check: Any) -> bool:
    return bool(check(await relay.healthz()))


async def _publish_numbers(
    ws: aiohttp.ClientWebSocketResponse,
    channel: str,
    count: int,
    pause: float = 0.0,
    ack_last: bool = False,
) -> None:
    for n in range(count):
        frame: dict[str, Any] = {"type": "publisher", "id": channel, "data": {"n": n}}
        if ack_last and n == count - 1:
            frame["ack"] = True
        await send(ws, frame)
        if pause:
            await asyncio.sleep(pause)
    if ack_last:
        while (await recv(ws))["type"] != "ack":
            pass


async def _true(value: bool) -> bool:
    return value
