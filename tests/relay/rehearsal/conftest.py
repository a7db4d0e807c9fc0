"""A REST session of a plain ARI client of the fake Asterisk (the ``fake`` fixture of
tests/relay/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from relay.gateways.ari_core import basic_auth
from relay.rehearsal.fake_ari import FakeAri
from tests.relay.gateways.ari_calls import PASSWORD, USER


@pytest.fixture
async def http(fake: FakeAri) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": basic_auth(USER, PASSWORD)}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{fake.port}", headers=headers) as s:
        yield s
