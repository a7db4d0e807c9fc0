"""NAME:callers against a real relay on a free port: each keypad hears its own caller's
news and the digest, nobody else's; strangers hear the digest only; only the billboard
speaks there, and only in the contract's shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

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

CALLERS = "dialjam:callers"
DIGEST = {
    "event": "digest", "tempo": 112, "key": "C", "scale": "major", "playing": 8,
    "waiting": 2, "bays": 8, "paused": False,
}  # fmt: skip


def assign(caller: str, track: str | None = "bass", line: int = 0) -> dict[str, Any]:
    color = "#8a5cf6" if track else None
    return {"event": "assign", "caller": caller, "track": track, "color": color, "line": line}


async def keypad(relay: RunningRelay, v: int = 2) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """A keypad's connection subscribed to the callers channel with its caller session."""
    session = await relay.caller_session()
    ws = await relay.connect()
    await send(ws, {"type": "subscriber", "id": CALLERS, "v": v, "session": session["session"]})
    if v == 2:
        assert (await recv(ws))["type"] == "subscribed"
    return ws, session["caller"]


async def subscribed(relay: RunningRelay, n: int) -> None:
    """`n` subscriptions to the callers channel are in place."""

    async def check() -> bool:
        return len(relay.state.hub.channels[CALLERS].subscriptions) >= n

    await until(check)


async def billboard(relay: RunningRelay) -> aiohttp.ClientWebSocketResponse:
    return await relay.publisher(BILLBOARD)


async def tell(ws: aiohttp.ClientWebSocketResponse, data: dict[str, Any]) -> None:
    await send(ws, {"type": "publisher", "id": CALLERS, "data": data})


async def nothing_more(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.receive(), seconds)


async def test_a_keypad_hears_its_own_caller_and_the_digest_never_another_callers_news(
    relay: RunningRelay,
) -> None:
    a, caller_a = await keypad(relay)
    b, caller_b = await keypad(relay)
    stranger = await relay.connect()
    await send(stranger, {"type": "subscriber", "id": CALLERS, "v": 2})
    assert (await recv(stranger))["type"] == "subscribed"
    await subscribed(relay, 3)
    speaker = await billboard(relay)
    await tell(speaker, assign(caller_b, "lead"))
    await tell(speaker, {**assign(caller_a), "mode": "chord_tones", "region": [2, 3]})
    await tell(speaker, {"event": "leave", "caller": caller_b, "reason": "kicked", "ban_s": 120})
    await tell(speaker, {"event": "notice", "caller": caller_b, "code": "paused"})
    await tell(speaker, DIGEST)
    inbox_a = Inbox(a)
    first, digest = await inbox_a.events(2)
    assert first["data"] == {**assign(caller_a), "mode": "chord_tones", "region": [2, 3]}
    assert digest["data"] == DIGEST
    assert first["seq"] == 2 and digest["seq"] == 5  # one order; the others' news skipped
    await nothing_more(a)
    inbox_b = Inbox(b)
    heard_b = [m["data"] for m in await inbox_b.events(4)]
    assert heard_b == [
        assign(caller_b, "lead"),
        {"event": "leave", "caller": caller_b, "reason": "kicked", "ban_s": 120},
        {"event": "notice", "caller": caller_b, "code": "paused"},
        DIGEST,
    ]
    assert caller_a not in str(heard_b)
    # A subscriber without a caller session hears the digest alone.
    assert [m["data"] for m in await Inbox(stranger).events(1)] == [DIGEST]
    await nothing_more(stranger)


async def test_a_seed_style_keypad_hears_its_news_as_bare_data_too(relay: RunningRelay) -> None:
    a, caller_a = await keypad(relay, v=1)
    b, caller_b = await keypad(relay, v=1)
    await subscribed(relay, 2)
    speaker = await billboard(relay)
    await tell(speaker, assign(caller_b))
    await tell(speaker, assign(caller_a, None, line=3))
    assert await recv(a) == assign(caller_a, None, line=3)
    assert await recv(b) == assign(caller_b)
    await nothing_more(a)


async def test_the_operator_and_the_billboard_may_watch_every_callers_news(
    relay: RunningRelay,
) -> None:
    watcher = await relay.publisher(OPERATOR)
    await send(watcher, {"type": "subscriber", "id": CALLERS, "v": 2})
    assert (await recv(watcher))["type"] == "subscribed"
    speaker = await billboard(relay)
    await tell(speaker, assign("c-someone"))
    assert (await recv(watcher))["data"] == assign("c-someone")


async def test_only_the_billboard_token_speaks_on_the_callers_channel(
    relay: RunningRelay,
) -> None:
    a, caller_a = await keypad(relay)
    await subscribed(relay, 1)
    session = await relay.caller_session()
    for headers, extra in (
        ({}, {}),  # a stranger
        ({"Authorization": f"Bearer {PUBLISHER}"}, {}),  # a seed publisher
        ({"Authorization": f"Bearer {OPERATOR}"}, {}),  # the console
        ({}, {"session": session["session"]}),  # a keypad
    ):
        ws = await relay.connect(headers=headers)
        await send(ws, {"type": "publisher", "id": CALLERS, "data": assign(caller_a), **extra})
        error = await recv(ws)
        assert error["type"] == "error", error
        assert error["code"] in ("unauthorised", "bad_session")  # a keypad: no session here
    async with relay.session.post(f"{relay.url}/publish/{CALLERS}", json=assign(caller_a)) as r:
        assert r.status == 401
    await nothing_more(a)


async def test_the_billboard_speaks_on_the_callers_channel_only_in_the_contracts_shapes(
    relay: RunningRelay,
) -> None:
    a, caller_a = await keypad(relay)
    await subscribed(relay, 1)
    speaker = await billboard(relay)
    for bad in (
        {"event": "state", "tempo": 112},  # the console's, not a phone's
        {"event": "assign", "caller": "4155551212", "track": None, "color": None, "line": 1},
        {"event": "digest", "tempo": 112},  # counts missing
        {"event": "notice", "caller": caller_a, "code": "free beer"},
    ):
        await tell(speaker, bad)
        assert (await recv(speaker))["type"] == "error"
    # Unknown fields never reach a phone: a digest naming callers is cut to its shape.
    await tell(speaker, {**DIGEST, "line": [caller_a, "c-other"], "hud": {"fps": 60}})
    assert (await recv(a))["data"] == DIGEST


async def test_a_resumed_keypad_is_replayed_only_its_own_news(relay: RunningRelay) -> None:
    speaker = await billboard(relay)
    session = await relay.caller_session()
    await tell(speaker, assign("c-someone", "lead"))
    await tell(speaker, assign(session["caller"], None, line=2))
    await tell(speaker, DIGEST)
    await send(speaker, {"type": "ping"})
    assert await recv(speaker) == {"type": "pong"}
    ws = await relay.connect()
    frame = {"type": "subscriber", "id": CALLERS, "v": 2, "since": 0}
    await send(ws, {**frame, "session": session["session"]})
    inbox = Inbox(ws)
    subscribed_, mine, digest = await inbox.events(3)
    assert subscribed_["type"] == "subscribed"
    assert [mine["seq"], digest["seq"]] == [2, 3]
    assert mine["data"]["caller"] == session["caller"] and digest["data"] == DIGEST
    await nothing_more(ws)


async def test_a_keypad_that_only_listened_leaves_no_leave_behind(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(session_grace_s=0.2)
    sub = await relay.connect()
    await send(sub, {"type": "subscriber", "id": "dialjam"})
    ws, _caller = await keypad(relay)
    await subscribed(relay, 1)
    await ws.close()
    await nothing_more(sub, 0.8)  # four graces: its page took no place, so gives none back


async def test_a_keypads_session_must_be_for_the_installation_of_the_channel(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    ws = await relay.connect()
    frame = {"type": "subscriber", "id": CALLERS, "v": 2, "session": "c-forged.99999999999.x"}
    await send(ws, frame)
    assert (await recv(ws))["code"] == "bad_session"
