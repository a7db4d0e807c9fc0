"""The project's programs as real processes: `python -m relay` and a headless
`python -m billboard` (its relay embedded) on free ports of 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from tests.support.relay import PUBLISHER

ROOT = Path(__file__).resolve().parents[2]
# How long a program may take to start and say where it listens: about a second on an
# idle machine; Python's imports on two cores that other work keeps busy take longer.
STARTUP_S = 60.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (for a process that must be
    told its port before it starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_process(
    *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """`python -m relay ARGS` from the repository's root, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_for_line(proc: asyncio.subprocess.Process, fragment: str) -> list[str]:
    """The lines `proc` printed up to the first holding `fragment`."""
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), STARTUP_S)
        if not raw:
            raise AssertionError(f"relay exited before printing {fragment!r}: {lines}")
        lines.append(raw.decode())
        if fragment in lines[-1]:
            return lines


def billboard_command(port: int, *args: str) -> list[str]:
    """`python -m billboard`, headless and silent, its relay on 127.0.0.1:`port`."""
    return [
        sys.executable,
        "-m",
        "billboard",
        "--headless",
        "--no-sound",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]


# No window and no sound card: SDL's dummy drivers.
HEADLESS_ENV = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


async def start_billboard(*args: str) -> tuple[asyncio.subprocess.Process, int]:
    """A headless, silent billboard on a free port, once its relay has said where it
    listens; its callers may publish with the publisher token of tests.support.relay."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *billboard_command(port, *args),
        cwd=ROOT,
        env={
            **os.environ,
            **HEADLESS_ENV,
            # The test's callers publish as a seed publisher (an IVR) does.
            "DIALJAM_PUBLISHER_TOKEN": PUBLISHER,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), STARTUP_S)
        if not line:
            _, err = await proc.communicate()
            raise AssertionError(f"billboard exited early: {err.decode()[-2000:]}")
        if b"health:" in line:
            return proc, port
