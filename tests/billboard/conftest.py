"""Fixtures of the billboard's screen tests: SDL's dummy video driver (pixels without
a screen) and a real X server (Xvfb) on a display number of its own."""

from __future__ import annotations

import select
import subprocess
from collections.abc import Iterator

import pygame
import pytest

from tests.services import need_tool, service_unavailable


@pytest.fixture
def video(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SDL's dummy video driver, set before the display subsystem starts."""
    pygame.display.quit()  # the next init reads the driver set here
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    yield
    pygame.quit()


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A real X server (Xvfb) on a free display number; yields its DISPLAY."""
    binary = need_tool("Xvfb", "apt-get install xvfb (make test installs it)")
    # -displayfd: Xvfb picks a free display itself and writes its number when ready,
    # so parallel runs and leftover servers never collide.
    proc = subprocess.Popen(
        [binary, "-displayfd", "1", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        number = proc.stdout.readline().decode().strip() if ready else ""
        if not number.isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=5)
            service_unavailable(
                f"Xvfb did not start: {err.decode(errors='replace')[-500:]}",
                "apt-get install --no-install-recommends xvfb",
            )
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
