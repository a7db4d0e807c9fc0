"""The fake Asterisk the ARI tests talk to (relay/rehearsal/fake_ari.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.rehearsal.fake_ari import FakeAri

from .gateways.ari_calls import PASSWORD, USER


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = FakeAri(username=USER, password=PASSWORD)
    await server.start()
    yield server
    await server.close()
