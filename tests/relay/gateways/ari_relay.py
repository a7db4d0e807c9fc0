"""A relay whose ARI client is connected to the fake Asterisk
(relay/rehearsal/fake_ari.py), and what the tests ask of it. The fake itself is the
``fake`` fixture of conftest.py."""

from __future__ import annotations

from typing import Any

import aiohttp

from relay.config import AriConfig
from relay.rehearsal.fake_ari import FakeAri
from tests.support.relay import RunningRelay, StartRelay, recv

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
