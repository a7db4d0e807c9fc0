"""A relay whose ARI client is connected to the fake Asterisk
(relay/rehearsal/fake_ari.py), and what the tests ask of it. The fake itself is the
``fake`` fixture of conftest.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from relay.config import AriConfig
from relay.rehearsal.fake_ari import FakeAri
from tests.support.relay import RunningRelay, StartRelay, recv, until

from .ari_calls import KEY, NUMBER, PASSWORD, USER
from .listeners import subscribe


def ari_config(fake: FakeAri, **settings: Any) -> AriConfig:
    settings.setdefault("username", USER)
    settings.setdefault("password", PASSWORD)
    settings.setdefault("reconnect_max_s", 0.05)
    return AriConfig(url=f"http://127.0.0.1:{fake.port}", **settings)


async def start(
    start_relay: StartRelay, fake: FakeAri, **settings: Any
) -> tuple[RunningRelay, aiohttp.ClientWebSocketResponse]:
    """A relay whose ARI client is connected to `fake`, and a subscriber of its channel."""
    relay = await start_relay(pseudonym_key=KEY, ari=ari_config(fake, **settings))
    sub = await subscribe(relay, settings.get("channel") or "dialjam")
    await fake.wait_client()
    return relay, sub


async def call_and_join(
    fake: FakeAri, sub: aiohttp.ClientWebSocketResponse, number: str | None = NUMBER
) -> tuple[str, dict[str, Any]]:
    channel_id = await fake.call(number)
    event = await recv(sub)
    assert event["event"] == "join"
    return channel_id, event


async def ari_health(relay: RunningRelay) -> dict[str, Any]:
    ari: dict[str, Any] = (await relay.healthz())["ari"]
    return ari


def other_client(base: str, app: str = "dialjam") -> tuple[str, dict[str, str]]:
    """Where another ARI client (a second relay, a debugging tool) connects for `app`."""
    return base + "/ari/events", {"app": app, "api_key": f"{USER}:{PASSWORD}"}


def music_gone(fake: FakeAri) -> Callable[[], Awaitable[bool]]:
    """A check for `until`: no external media channel is left in the app, no bridge in
    Asterisk (the phone music of every call is torn down)."""

    async def gone() -> bool:
        return not fake.media.bridges and not set(fake.media.externals) & set(fake.channels)

    return gone


def callers_hung_up(fake: FakeAri) -> dict[str, str]:
    """The callers' channels the relay DELETEd (their phone music's left out), and the
    reason it gave."""
    return {i: why for i, why in fake.hung_up.items() if i not in fake.media.externals}


def caller_deletes(fake: FakeAri) -> list[str]:
    """The paths of the DELETEs of callers' channels (not of their phone music's)."""
    return [
        p
        for m, p, _ in fake.requests
        if m == "DELETE" and p.startswith("/ari/channels/")
        if p.rsplit("/", 1)[-1] not in fake.media.externals
    ]


async def music_of(fake: FakeAri, channel_id: str) -> tuple[str, str]:
    """Once the caller on `channel_id` hears the music: (their bridge's id, the external
    media channel's id in it)."""
    found: list[tuple[str, str]] = []

    async def bridged() -> bool:
        bridge = fake.media.bridge_of(channel_id)
        ours = [] if bridge is None else [i for i in bridge.members if i in fake.media.externals]
        if bridge is not None and ours:
            found.append((bridge.json["id"], ours[0]))
        return bool(found)

    await until(bridged)
    return found[0]
