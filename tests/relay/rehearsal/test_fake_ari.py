"""The fake Asterisk (relay/rehearsal/fake_ari.py) behaves as real Asterisk does, in
every way real Asterisk was found to differ from the documentation's reading
(/work/shared/WIRE.md's "Checked against the real servers"; the shapes are Asterisk's
rest-api/api-docs/*.json). Each test is one such behaviour, seen by a plain ARI client;
how the gateway copes with each is tested in tests/relay/gateways/test_ari_real.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from relay.rehearsal.fake_ari import FakeAri
from tests.relay.gateways.ari_calls import NUMBER, PASSWORD, USER

from .ari_client import a_call, events, next_event

QUIET_S = 0.2  # proof that nothing comes: a short wait that passes


async def silent(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Nothing arrives on `ws` for a short while (and it stays open)."""
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=QUIET_S)
    return not ws.closed


async def wait(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not check():
            await asyncio.sleep(0.01)


async def test_events_and_channels_have_asterisks_shapes(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with events(http) as ws:
        await fake.wait_client()
        channel_id = await fake.call(NUMBER)
        start = await next_event(ws)
        assert set(start) == {"type", "timestamp", "application", "asterisk_id", "args", "channel"}
        assert start["type"] == "StasisStart" and start["application"] == "dialjam"
        channel = start["channel"]
        assert {"id", "name", "state", "caller", "connected", "accountcode"} <= set(channel)
        assert {"dialplan", "creationtime", "language"} <= set(channel)
        assert channel["state"] == "Ring" and channel["caller"]["number"] == NUMBER
        async with http.post(f"/ari/channels/{channel_id}/answer") as resp:
            assert resp.status == 204
        async with http.post("/ari/channels/nope/answer") as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "Channel not found"}
    async with aiohttp.ClientSession() as anonymous:
        url = f"http://127.0.0.1:{fake.port}/ari/applications/dialjam"
        async with anonymous.get(url) as resp:
            assert resp.status == 401


async def test_any_app_name_is_accepted_and_calls_fall_through_while_no_socket_holds_the_dialplans(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with events(http, "dialjamm") as wrong:
        await wait(lambda: "dialjamm" in fake.apps)
        assert fake.connects == 0  # a socket for another app
        channel_id = await fake.call(NUMBER)  # Stasis(dialjam): "not active"
        assert await silent(wrong)
        assert fake.fell_through == [channel_id] and not fake.channels
        async with http.get("/ari/applications/dialjamm") as resp:
            assert resp.status == 200 and (await resp.json())["channel_ids"] == []


async def test_a_replaced_socket_stays_open_and_silent_and_the_app_is_free_when_the_newer_leaves(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with events(http) as first:
        async with events(http) as second:
            replaced = await next_event(first)
            assert replaced["type"] == "ApplicationReplaced"
            assert replaced["application"] == "dialjam"
            await fake.call(NUMBER)
            assert (await next_event(second))["type"] == "StasisStart"
            assert await silent(first)
        await wait(lambda: fake.listener is None)
        falls = await fake.call(NUMBER)
        assert await silent(first)  # never promoted back
        assert fake.fell_through == [falls]
    async with events(http) as again:
        await fake.wait_client()
        await fake.call(NUMBER)
        assert (await next_event(again))["type"] == "StasisStart"


async def test_a_restart_ends_every_call(fake: FakeAri, http: aiohttp.ClientSession) -> None:
    async with a_call(fake, http) as (ws, channel_id):
        port = fake.port
        await fake.close()
        await fake.start(port=port)
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    async with http.get(f"/ari/channels/{channel_id}") as resp:
        assert resp.status == 404
    async with http.get("/ari/applications/dialjam") as resp:
        assert resp.status == 404  # no client has registered it since
    async with events(http) as ws, http.get("/ari/applications/dialjam") as resp:
        assert (await resp.json())["channel_ids"] == []


async def test_events_while_no_socket_holds_the_app_are_dropped_not_queued(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (_, channel_id):
        pass
    await wait(lambda: fake.listener is None)
    await fake.press(channel_id, "5")  # lost
    async with events(http) as ws:
        await fake.wait_client()
        await fake.press(channel_id, "6")
        dtmf = await next_event(ws)
        assert (dtmf["type"], dtmf["digit"]) == ("ChannelDtmfReceived", "6")


async def test_answer_sends_a_state_change_and_play_sends_playback_events(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (ws, channel_id):
        async with http.post(f"/ari/channels/{channel_id}/answer"):
            pass
        change = await next_event(ws)
        assert change["type"] == "ChannelStateChange" and change["channel"]["state"] == "Up"
        async with http.post(f"/ari/channels/{channel_id}/play", params={"media": "sound:beep"}):
            pass
        started, finished = await next_event(ws), await next_event(ws)
        assert started["type"] == "PlaybackStarted"
        assert started["playback"]["state"] == "playing"
        assert finished["type"] == "PlaybackFinished"
        assert finished["playback"]["state"] == "done"
        assert finished["playback"]["media_uri"] == "sound:beep"


async def test_a_missing_sound_is_accepted_with_201_then_reported_failed(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (ws, channel_id):
        play = f"/ari/channels/{channel_id}/play"
        async with http.post(play, params={"media": "sound:no-such-prompt"}) as resp:
            assert resp.status == 201
            playback = await resp.json()
            assert playback["state"] == "queued"
            assert playback["target_uri"] == f"channel:{channel_id}"
        kinds = [await next_event(ws), await next_event(ws)]
        assert [k["type"] for k in kinds] == ["PlaybackStarted", "PlaybackFinished"]
        assert kinds[1]["playback"]["state"] == "failed"
        assert kinds[1]["playback"]["media_uri"] == "sound:no-such-prompt"


async def test_a_hang_up_sends_a_request_without_soft_then_stasis_end_and_no_destroyed(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (ws, channel_id):
        await fake.hang_up(channel_id)
        request, end = await next_event(ws), await next_event(ws)
        assert request["type"] == "ChannelHangupRequest" and request["cause"] == 16
        assert "soft" not in request
        assert end["type"] == "StasisEnd"
        assert await silent(ws)  # no ChannelDestroyed


async def test_channels_carry_a_protocol_id(fake: FakeAri, http: aiohttp.ClientSession) -> None:
    async with events(http) as ws:
        await fake.wait_client()
        channel_id = await fake.call(NUMBER)
        channel = (await next_event(ws))["channel"]
        assert isinstance(channel["protocol_id"], str) and channel["protocol_id"]
        async with http.get(f"/ari/channels/{channel_id}") as resp:
            assert (await resp.json())["protocol_id"] == channel["protocol_id"]


async def test_applications_list_their_event_filters(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with events(http):
        await fake.wait_client()
        channel_id = await fake.call(NUMBER)
        async with http.get("/ari/applications/dialjam") as resp:
            app = await resp.json()
    assert app == {
        "name": "dialjam",
        "channel_ids": [channel_id],
        "bridge_ids": [],
        "endpoint_ids": [],
        "device_names": [],
        "events_allowed": [],
        "events_disallowed": [],
    }


async def test_duration_ms_is_how_long_the_key_was_held(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (ws, channel_id):
        await fake.press(channel_id, "1")  # released at once: Asterisk can say 0
        await fake.press(channel_id, "2", held_s=0.12)
        quick, held = await next_event(ws), await next_event(ws)
        assert quick["digit"] == "1" and 0 <= quick["duration_ms"] < 100
        # Measured, so at least the hold (and not much more, even on a busy machine).
        assert held["digit"] == "2" and 120 <= held["duration_ms"] < 5000


async def test_the_dialplan_priority_is_the_stasis_lines(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with events(http) as ws:
        await fake.wait_client()
        await fake.call(NUMBER)
        dialplan = (await next_event(ws))["channel"]["dialplan"]
    # exten => …,1,NoOp(dialjam caller) / same => n,Stasis(dialjam)
    assert dialplan["priority"] == 2
    assert (dialplan["app_name"], dialplan["app_data"]) == ("Stasis", "dialjam")


async def test_a_deleted_channel_ends_with_stasis_end_and_a_bad_reason_is_refused(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (ws, channel_id):
        path = f"/ari/channels/{channel_id}"
        async with http.delete(path, params={"reason": "kicked"}) as resp:
            assert resp.status == 400
        async with http.delete(path, params={"reason": "normal"}) as resp:
            assert resp.status == 204
        assert (await next_event(ws))["type"] == "StasisEnd"
        assert fake.hung_up == {channel_id: "normal"}
        async with http.delete(path) as resp:
            assert resp.status == 404


async def test_a_subscribe_all_socket_sees_calls_start_stasis_as_far_as_its_filter_allows(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    params = {"app": "watcher", "subscribeAll": "true", "api_key": f"{USER}:{PASSWORD}"}
    async with http.ws_connect("/ari/events", params=params) as watcher:
        await wait(lambda: "watcher" in fake.apps)
        body = {"allowed": [{"type": "ChannelDialplan"}]}
        async with http.put("/ari/applications/watcher/eventFilter", json=body) as resp:
            assert resp.status == 200
            assert (await resp.json())["events_allowed"] == body["allowed"]
        async with http.put("/ari/applications/watcher/eventFilter", json={"allowed": [1]}) as resp:
            assert resp.status == 400
        channel_id = await fake.call(NUMBER)  # falls through: no socket holds "dialjam"
        seen = await next_event(watcher)
        assert seen["type"] == "ChannelDialplan" and seen["application"] == "watcher"
        assert (seen["dialplan_app"], seen["dialplan_app_data"]) == ("Stasis", "dialjam")
        assert seen["channel"]["id"] == channel_id and fake.fell_through == [channel_id]
        async with http.get("/ari/applications") as resp:
            assert [app["name"] for app in await resp.json()] == ["watcher"]
        body = {"allowed": [{"type": "StasisStart"}]}
        async with http.put("/ari/applications/watcher/eventFilter", json=body):
            pass
        await fake.call(NUMBER)
        assert await silent(watcher)  # filtered out
