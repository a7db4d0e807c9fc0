"""Who may do what (the README's "Facing the street"), against a real relay on a free port:
strangers' frames are data, never control, and nobody plays as someone else."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from relay.config import ConfigError, RelayConfig, validate
from relay.contract.events import is_caller_id
from tests.support.relay import BILLBOARD, PUBLISHER, RunningRelay, StartRelay, recv, send, until


async def listener(
    relay: RunningRelay, channel: str = "dialjam"
) -> aiohttp.ClientWebSocketResponse:
    ws = await relay.connect()
    before = relay.state.hub.subscription_count()
    await send(ws, {"type": "subscriber", "id": channel})
    await until(lambda: _true(relay.state.hub.subscription_count() > before))
    return ws


async def quiet(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.receive(), seconds)


async def test_a_stranger_cannot_publish_on_the_installation_channel(relay: RunningRelay) -> None:
    sub = await listener(relay)
    stranger = await relay.connect()
    for data in (
        {"event": "digit", "caller": "c-someone", "digit": "5"},
        {"event": "command", "name": "panic"},
        {"caller_id": "4155551212", "command": "5"},
    ):
        await send(stranger, {"type": "publisher", "id": "dialjam", "data": data})
        error = await recv(stranger)
        assert (error["type"], error["code"]) == ("error", "unauthorised")
        assert "/session" in error["message"]
    await quiet(sub)
    # Nor over HTTP, which a foreign web page could reach with a text/plain POST.
    async with relay.session.post(
        f"{relay.url}/publish/dialjam", data='{"event":"leave","caller":"c-x"}'
    ) as resp:
        assert resp.status == 401
    # Nor on a channel of its own making.
    await send(stranger, {"type": "publisher", "id": "elsewhere", "data": {"x": 1}})
    assert (await recv(stranger))["code"] == "unauthorised"


async def test_a_keypad_plays_only_as_the_caller_of_its_session(relay: RunningRelay) -> None:
    sub = await listener(relay)
    session = await relay.caller_session()
    assert is_caller_id(session["caller"]) and session["channel"] == "dialjam"
    keypad = await relay.connect()
    frame: dict[str, Any] = {"type": "publisher", "id": "dialjam", "session": session["session"]}
    # It names someone else, a number, a display and a source: the relay stamps its own.
    forged = {
        "event": "digit",
        "caller": "c-victim",
        "digit": "7",
        "source": "twilio",
        "display": "…99",
        "extra": "x" * 100,
    }
    await send(keypad, {**frame, "data": forged})
    assert await recv(sub) == {
        "event": "digit",
        "caller": session["caller"],
        "digit": "7",
        "source": "web",
    }
    # A command or a seed form from a keypad is refused.
    for data in ({"event": "command", "name": "panic"}, {"caller_id": "1", "command": "5"}):
        await send(keypad, {**frame, "data": data})
        assert (await recv(keypad))["type"] == "error"
    # A second session on the same socket is refused: one connection, one caller.
    other = await relay.caller_session()
    await send(keypad, {**frame, "session": other["session"], "data": {"event": "join"}})
    assert (await recv(keypad))["code"] == "bad_session"
    await quiet(sub)


async def test_a_forged_or_foreign_session_is_refused(start_relay: StartRelay) -> None:
    relay = await start_relay()
    other = await start_relay(operator_token="another-installation")
    theirs = await other.caller_session()
    ours = await relay.caller_session()
    keypad = await relay.connect()
    caller, expires, mac = ours["session"].split(".")
    for token in (
        theirs["session"],  # another relay's key
        f"c-victim.{expires}.{mac}",  # another caller under our MAC
        f"{caller}.{int(expires) + 10**6}.{mac}",  # a later expiry
        "",
        "x" * 500,
    ):
        await send(
            keypad,
            {"type": "publisher", "id": "dialjam", "session": token, "data": {"event": "join"}},
        )
        assert (await recv(keypad))["code"] == "bad_session"
    async with relay.session.post(f"{relay.url}/session", json={"channel": "elsewhere"}) as resp:
        assert resp.status == 404 and (await resp.json())["code"] == "unknown_channel"


async def test_an_expired_session_is_refused_and_renewed_for_the_same_caller(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(session_ttl_s=60)
    now = [1_900_000_000.0]
    relay.state.wall = lambda: now[0]
    session = await relay.caller_session()
    now[0] += 61
    keypad = await relay.connect()
    frame = {"type": "publisher", "id": "dialjam", "session": session["session"]}
    await send(keypad, {**frame, "data": {"event": "join"}})
    assert (await recv(keypad))["code"] == "session_expired"
    body = {"channel": "dialjam", "renew": session["session"]}
    async with relay.session.post(f"{relay.url}/session", json=body) as resp:
        renewed = await resp.json()
    assert renewed["caller"] == session["caller"] and renewed["expires"] > now[0]
    sub = await listener(relay)
    await send(keypad, {**frame, "session": renewed["session"], "data": {"event": "join"}})
    assert (await recv(sub))["caller"] == session["caller"]


async def test_a_keypad_that_goes_leaves_after_the_grace_unless_it_comes_back(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(session_grace_s=0.3)
    sub = await listener(relay)
    session = await relay.caller_session()
    frame = {"type": "publisher", "id": "dialjam", "session": session["session"]}
    keypad = await relay.connect()
    await send(keypad, {**frame, "data": {"event": "join"}})
    assert (await recv(sub))["event"] == "join"
    await keypad.close()  # a phone changing networks…
    keypad = await relay.connect()  # …is back within the grace: no leave
    await send(keypad, {**frame, "data": {"event": "digit", "digit": "1"}})
    assert (await recv(sub))["event"] == "digit"
    await quiet(sub, 0.6)
    await keypad.close()  # gone for good
    assert await recv(sub, 3) == {"event": "leave", "caller": session["caller"], "reason": "closed"}


async def test_a_keypad_that_said_leave_is_not_made_to_leave_again_when_it_goes(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(session_grace_s=0.3)
    sub = await listener(relay)
    session = await relay.caller_session()
    frame = {"type": "publisher", "id": "dialjam", "session": session["session"]}
    keypad = await relay.connect()
    await send(keypad, {**frame, "data": {"event": "join"}})
    await send(keypad, {**frame, "data": {"event": "leave"}})
    assert [(await recv(sub))["event"] for _ in range(2)] == ["join", "leave"]
    await keypad.close()
    await quiet(sub, 0.9)  # three graces: no second leave
    # Playing again from the same session, then going, leaves once more.
    keypad = await relay.connect()
    await send(keypad, {**frame, "data": {"event": "join"}})
    assert (await recv(sub))["event"] == "join"
    await keypad.close()
    assert await recv(sub, 3) == {"event": "leave", "caller": session["caller"], "reason": "closed"}


async def test_the_publisher_token_speaks_for_any_caller_but_never_passes_a_number(
    relay: RunningRelay,
) -> None:
    sub = await listener(relay)
    ivr = await relay.connect("/ws?token=" + PUBLISHER)
    await send(
        ivr,
        {
            "type": "publisher",
            "id": "dialjam",
            "data": {"event": "join", "caller": "+1 415 555 1212", "nick": "555 1212 999"},
        },
    )
    seen = await recv(sub)
    assert is_caller_id(seen["caller"]) and seen["display"] == "…12" and seen["nick"] is None
    # Nor in a source, nor in the display of a seed caller already named by a pseudonym.
    for data in (
        {"event": "digit", "caller": "c-ivr", "digit": "1", "source": "14155551212"},
        {"caller_id": "c-ivr", "command": "2", "display": "+1 415 555 1212"},
    ):
        await send(ivr, {"type": "publisher", "id": "dialjam", "data": data})
        seen = await recv(sub)
        assert "5551212" not in str(seen) and seen.get("source", "web") == "web"
    assert seen["display"] == "…12"
    await send(
        ivr, {"type": "publisher", "id": "dialjam", "data": {"event": "command", "name": "panic"}}
    )
    assert (await recv(ivr))["code"] == "wrong_channel"
    await quiet(sub)


async def test_a_publisher_over_its_rate_is_read_later_not_refused(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(publisher_rate=200, publisher_burst=20)
    sub = await listener(relay)
    ivr = await relay.publisher()
    loop = asyncio.get_running_loop()
    began = loop.time()
    for n in range(80):
        data = {"event": "digit", "caller": f"c-ivr{chr(97 + n % 26)}", "digit": "1"}
        await send(ivr, {"type": "publisher", "id": "dialjam", "data": data})
    # A frame as big as a token allows counts once per KiB: 64 of the rate.
    await send(ivr, {"type": "publisher", "id": "elsewhere", "data": {"pad": "x" * 65000}})
    last = {"event": "join", "caller": "c-z"}
    await send(ivr, {"type": "publisher", "id": "dialjam", "data": last})
    for _ in range(81):
        frame = await recv(sub, 5)
    assert frame["caller"] == "c-z"  # everything, in order, none refused …
    # … later: 20 at once, then 200 a second for the other 60 and the big frame's 64.
    assert loop.time() - began >= (80 + 64 - 20) / 200 * 0.9
    health = await relay.healthz()
    assert health["throttled"] > 0 and "rate_limited" not in health["errors"]
    # Over HTTP, where a request cannot wait, a publisher over its rate is answered 429:
    # three posts of 9 KiB take 27 of a burst of 20. (At one a second the bucket takes
    # seven seconds to let the third through, however slowly a busy machine posts.)
    slow = await start_relay(publisher_rate=1, publisher_burst=20)
    auth = {"Authorization": f"Bearer {PUBLISHER}"}
    statuses = []
    for _ in range(3):
        async with slow.session.post(
            f"{slow.url}/publish/dialjam", data=b'{"pad":"' + b"x" * 9000 + b'"}', headers=auth
        ) as resp:
            statuses.append(resp.status)
    assert statuses[-1] == 429, statuses


async def test_new_sessions_are_limited_per_address(start_relay: StartRelay) -> None:
    relay = await start_relay(sessions_per_minute=3)
    statuses = []
    for _ in range(5):
        async with relay.session.post(f"{relay.url}/session", json={}) as resp:
            statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429, 429]


async def test_one_caller_is_held_to_its_rate_across_connections(start_relay: StartRelay) -> None:
    relay = await start_relay(caller_rate=5, rate=0)
    sub = await listener(relay)
    session = await relay.caller_session()
    sockets = [await relay.connect() for _ in range(4)]
    frame = {"type": "publisher", "id": "dialjam", "session": session["session"]}
    loop = asyncio.get_running_loop()
    began = loop.time()
    for n in range(40):
        await send(sockets[n % 4], {**frame, "data": {"event": "digit", "digit": "1"}})
    delivered = 0
    with pytest.raises(asyncio.TimeoutError):
        while True:
            await recv(sub, 0.3)
            delivered += 1
    elapsed = loop.time() - began
    # A burst of 2 s worth, then 5 a second: four sockets do not make four callers.
    assert 10 <= delivered <= 10 + 5 * elapsed + 1
    assert (await relay.healthz())["errors"]["rate_limited"] >= 40 - delivered


async def test_healthz_is_degraded_until_a_billboard_listens(relay: RunningRelay) -> None:
    assert (await relay.healthz())["status"] == "degraded"
    billboard = await relay.connect(headers={"Authorization": f"Bearer {BILLBOARD}"})
    await send(billboard, {"type": "subscriber", "id": "dialjam", "v": 2})
    await until(lambda: _health(relay, "ok"))
    await billboard.close()
    await until(lambda: _health(relay, "degraded"))


async def test_a_stranger_opens_no_channel_but_may_listen_to_one_a_token_holder_opened(
    relay: RunningRelay,
) -> None:
    anon = await relay.connect()
    await send(anon, {"type": "subscriber", "id": "tower-b", "v": 2})
    error = await recv(anon)
    assert (error["type"], error["code"]) == ("error", "unknown_channel")
    await send(anon, {"type": "publisher", "id": "tower-c", "data": {}})
    assert (await recv(anon))["code"] == "unauthorised"
    assert not {"tower-b", "tower-c"} & relay.state.hub.channels.keys()
    opener = await relay.publisher()
    await send(opener, {"type": "subscriber", "id": "tower-b"})
    await send(anon, {"type": "subscriber", "id": "tower-b"})
    await until(lambda: _true(relay.state.hub.subscription_count() == 2))
    await send(opener, {"type": "publisher", "id": "tower-b", "data": {"n": 1}})
    assert await recv(anon) == {"n": 1}
    # Over HTTP too: a channel nobody opened is not there for a stranger.
    async with relay.session.post(f"{relay.url}/publish/newly", json={}) as resp:
        assert resp.status == 401


def test_open_mode_is_refused_on_a_public_address_unless_asked_for_by_name() -> None:
    validate(RelayConfig(host="127.0.0.1", open=True))
    with pytest.raises(ConfigError, match="open_public"):
        validate(RelayConfig(host="0.0.0.0", open=True))
    validate(RelayConfig(host="0.0.0.0", open=True, open_public=True))


async def _health(relay: RunningRelay, status: str) -> bool:
    return (await relay.healthz())["status"] == status


async def _true(value: bool) -> bool:
    return value
