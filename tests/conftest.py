"""Fixtures shared by every test folder: real relays on free ports of 127.0.0.1, and
real services (JACK, FluidSynth) that start for the test and fail under CI=true when
they cannot (locally they skip, saying how to install them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from relay.app import create_app, listen
from relay.config import AriConfig, RelayConfig, SipConfig, TwilioConfig
from tests.support.relay import BILLBOARD, OPERATOR, PUBLISHER, RunningRelay, StartRelay

pytest_plugins = ("tests.services",)


@pytest.fixture
async def start_relay() -> AsyncIterator[StartRelay]:
    """Starts relays (with the tokens of tests.support.relay unless told otherwise) on
    free ports of 127.0.0.1; each is cleaned up after the test."""
    started: list[RunningRelay] = []

    async def start(
        twilio: TwilioConfig | None = None,
        ari: AriConfig | None = None,
        sip: SipConfig | None = None,
        **settings: Any,
    ) -> RunningRelay:
        settings.setdefault("operator_token", OPERATOR)
        settings.setdefault("billboard_token", BILLBOARD)
        settings.setdefault("publisher_token", PUBLISHER)
        config = RelayConfig(host="127.0.0.1", port=0, **settings)
        app = create_app(config, twilio, ari, sip)
        runner = await listen(app, "127.0.0.1", 0, shutdown_timeout=2.0)
        port = runner.addresses[0][1]
        relay = RunningRelay(app, runner, port, aiohttp.ClientSession())
        started.append(relay)
        return relay

    yield start
    for relay in started:
        await relay.session.close()
        await relay.runner.cleanup()


@pytest.fixture
async def relay(start_relay: StartRelay) -> RunningRelay:
    return await start_relay()
