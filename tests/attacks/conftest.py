"""The attack tests' fixture: a `Stage` (tests/attacks/stage.py) started for the test
with the relay settings of its ``relay`` marker, and stopped after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .stage import Stage


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "relay(**settings): the attack stage's relay settings")


@pytest.fixture
async def stage(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stage]:
    """A billboard whose relay has the settings of the test's ``relay`` marker."""
    marker = request.node.get_closest_marker("relay")
    stage = Stage(tmp_path, **(marker.kwargs if marker is not None else {}))
    await stage.start()
    try:
        yield stage
    finally:
        await stage.stop()
