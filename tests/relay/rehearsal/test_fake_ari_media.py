"""The fake Asterisk's media side (relay/rehearsal/fake_ari_media.py) answers as real
Asterisk's ARI does (res/ari/resource_channels.c ast_ari_channels_external_media,
resource_bridges.c; rest-api/api-docs/channels.json and bridges.json), seen by a plain
ARI client: the checks and their status codes, the external channel's own StasisStart,
the bridge's events, and an RTP socket that records what it gets."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest

from relay.rehearsal.fake_ari import FakeAri

from .ari_client import a_call, next_event

GOOD = {"app": "dialjam", "external_host": "127.0.0.1:40000", "format": "ulaw"}


async def post(http: aiohttp.ClientSession, path: str, **params: str) -> tuple[int, Any]:
    async with http.post(path, params=params) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"app": ""}, 400, "app cannot be empty"),
        ({"transport": "tcp"}, 400, "transport must be 'udp' for rtp encapsulation"),
        ({"transport": "websocket"}, 400, "encapsulation must be 'none' for websocket transport"),
        ({"encapsulation": "audiosocket"}, 400, "transport must be 'tcp' for audiosocket"),
        ({"external_host": ""}, 400, "external_host is required"),
        ({"external_host": "127.0.0.1"}, 400, "external_host must be <host>:<port>"),
        ({"format": ""}, 400, "format cannot be empty"),
        ({"direction": "sideways"}, 400, "Invalid direction specified"),
        ({"channelId": "x" * 150}, 400, "Uniqueid length exceeds maximum of 149"),
        ({"encapsulation": "audiosocket", "transport": "tcp"}, 501, "not supported"),
    ],
)
async def test_external_media_refuses_what_asterisk_refuses_with_its_words(
    fake: FakeAri, http: aiohttp.ClientSession, change: dict[str, str], status: int, message: str
) -> None:
    params = {k: v for k, v in {**GOOD, **change}.items() if v != "" or k == "app"}
    got, body = await post(http, "/ari/channels/externalMedia", **params)
    assert (got, message in body["message"]) == (status, True)
    assert not fake.media.externals


async def test_an_external_channel_is_answered_with_where_its_rtp_goes_then_enters_the_app(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    fake.media.enter_after_s = 0.5  # a slow dial thread: the channel is not in the app yet
    async with a_call(fake, http) as (ws, _):
        status, body = await post(http, "/ari/channels/externalMedia", **GOOD, channelId="m-1")
        assert status == 200 and body["id"] == "m-1" and body["state"] == "Down"
        assert body["name"].startswith("UnicastRTP/127.0.0.1:40000-0x")
        address = body["channelvars"]["UNICASTRTP_LOCAL_ADDRESS"]
        port = int(body["channelvars"]["UNICASTRTP_LOCAL_PORT"])
        # Not in the app yet: a bridge will not take it (422).
        status, _ = await post(http, "/ari/bridges", type="mixing", bridgeId="b-1")
        assert status == 200
        status, body = await post(http, "/ari/bridges/b-1/addChannel", channel="m-1")
        assert (status, body["message"]) == (422, "Channel not in Stasis application")
        changed, started = await next_event(ws), await next_event(ws)
        assert (changed["type"], changed["channel"]["state"]) == ("ChannelStateChange", "Up")
        assert (started["type"], started["channel"]["id"], started["args"]) == (
            "StasisStart",
            "m-1",
            [],
        )
        status, _ = await post(http, "/ari/channels/externalMedia", **GOOD, channelId="m-1")
        assert status == 409  # its id is taken
        status, _ = await post(http, "/ari/bridges/b-1/addChannel", channel="m-1")
        assert status == 204
        entered = await next_event(ws)
        assert entered["type"] == "ChannelEnteredBridge"
        assert entered["bridge"]["channels"] == ["m-1"]
        # Its RTP socket records what is sent to it, and from where.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.bind(("127.0.0.1", 0))
            sender.sendto(b"\x80\x00" + bytes(170), (address, port))
            recorder = fake.media.externals["m-1"].recorder
            async with asyncio.timeout(5):
                while not recorder.packets:
                    await asyncio.sleep(0.01)
            assert recorder.packets[0][1:] == (b"\x80\x00" + bytes(170), sender.getsockname())


async def test_bridges_answer_for_a_missing_bridge_or_channel_as_asterisk_does(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (_, channel_id):
        status, _ = await post(http, "/ari/bridges/nope/addChannel", channel=channel_id)
        assert status == 404
        status, bridge = await post(http, "/ari/bridges", type="mixing", bridgeId="b-2", name="n")
        assert status == 200
        assert {k: bridge[k] for k in ("bridge_type", "bridge_class", "name", "channels")} == {
            "bridge_type": "mixing",
            "bridge_class": "stasis",
            "name": "n",
            "channels": [],
        }
        status, _ = await post(http, "/ari/bridges", bridgeId="b-2")
        assert status == 409
        status, body = await post(http, "/ari/bridges/b-2/addChannel")
        assert (status, body["message"]) == (400, "Missing parameter channel")
        status, body = await post(http, "/ari/bridges/b-2/addChannel", channel="9.9")
        assert (status, body["message"]) == (400, "Channel not found")
        async with http.delete("/ari/bridges/nope") as response:
            assert response.status == 404


async def test_a_caller_who_hangs_up_leaves_the_bridge_which_stays_until_deleted(
    fake: FakeAri, http: aiohttp.ClientSession
) -> None:
    async with a_call(fake, http) as (ws, channel_id):
        await post(http, "/ari/bridges", type="mixing", bridgeId="b-3")
        status, _ = await post(http, "/ari/bridges/b-3/addChannel", channel=channel_id, mute="true")
        assert status == 204
        assert fake.media.bridges["b-3"].members == {channel_id: {"mute": "true"}}
        assert (await next_event(ws))["type"] == "ChannelEnteredBridge"
        async with http.get("/ari/applications/dialjam") as response:
            assert (await response.json())["bridge_ids"] == ["b-3"]
        await fake.hang_up(channel_id)
        kinds = [(await next_event(ws))["type"] for _ in range(3)]
        assert kinds == ["ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd"]
        async with http.get("/ari/bridges") as response:
            assert [b["id"] for b in await response.json()] == ["b-3"]  # empty, still there
        async with http.delete("/ari/bridges/b-3") as response:
            assert response.status == 204
        assert (await next_event(ws))["type"] == "BridgeDestroyed"
        assert not fake.media.bridges
