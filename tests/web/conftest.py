"""A real headless Chromium for the web pages, and relays they can reach.

Chromium starts once per module; each test drives it through Playwright over the
DevTools protocol from its own event loop, so the relay the test starts and the
browser it drives share that loop. Under CI=true a missing Chromium or Playwright
fails the tests; elsewhere they skip, saying what to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from tests.services import service_unavailable
from tests.support.processes import HEADLESS_ENV, ROOT, STARTUP_S, billboard_command, free_port
from tests.support.relay import BILLBOARD, OPERATOR, PUBLISHER
from tests.web.pages import PAGE_WAIT_S, PHONE_NUMBER, Billboard

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = os.environ.get("DIALJAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    # Fifty keypads in one browser: background tabs must keep their timers and sockets.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)
INSTALL = "apt-get install chromium; pip install -e '.[test]' (playwright)"


@pytest.fixture(scope="module")
def chromium_endpoint() -> Iterator[str]:
    """One Chromium for the module, listening for DevTools on a free port."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        service_unavailable("playwright is not installed", INSTALL)
    binary = shutil.which(CHROMIUM)
    if binary is None:
        service_unavailable(f"{CHROMIUM} not found", INSTALL)
    with tempfile.TemporaryDirectory(prefix="dialjam-chromium-") as profile:
        proc = subprocess.Popen(
            [binary, *CHROMIUM_ARGS, "--remote-debugging-port=0", f"--user-data-dir={profile}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes end with it (see below)
        )
        try:
            # Chromium writes the port it chose to DevToolsActivePort once it listens.
            active = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + STARTUP_S
            while not (active.exists() and active.read_text().count("\n") >= 1):
                if proc.poll() is not None or time.monotonic() > deadline:
                    service_unavailable(f"{binary} did not start (exit {proc.poll()})", INSTALL)
                time.sleep(0.05)
            port = active.read_text().split()[0]
            endpoint = f"http://127.0.0.1:{port}"
            # Listening is not ready: until its first tab has loaded, a DevTools client
            # attaching to it can wait forever (Playwright's connect then times out).
            while not _first_tab_ready(endpoint):
                if proc.poll() is not None or time.monotonic() > deadline:
                    service_unavailable(f"{binary} opened no tab (exit {proc.poll()})", INSTALL)
                time.sleep(0.1)
            yield endpoint
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _first_tab_ready(endpoint: str) -> bool:
    """Chromium lists a page target that has finished loading (DevTools' /json/list)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint}/json/list", timeout=5) as reply:
            targets = orjson.loads(reply.read())
    except (OSError, ValueError):
        return False
    return any(t.get("type") == "page" and t.get("url") for t in targets)


CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_MS = 30_000


@pytest.fixture
async def browser(chromium_endpoint: str) -> AsyncIterator[Browser]:
    """The module's Chromium, driven by Playwright from this test's event loop; the
    contexts a test opens are closed after it, and its expectations wait `PAGE_WAIT_S`.
    A DevTools attach that stalls (seen once in CI on a loaded machine, the socket open
    and no answer) is tried again from a fresh Playwright, up to three times, before
    the test errors."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=PAGE_WAIT_S * 1000)  # see PAGE_WAIT_S

    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        async with async_playwright() as pw:
            try:
                connected = await pw.chromium.connect_over_cdp(
                    chromium_endpoint, timeout=CONNECT_TIMEOUT_MS
                )
            except PlaywrightError:
                if attempt == CONNECT_ATTEMPTS:
                    raise
                continue
            try:
                yield connected
            finally:
                for context in connected.contexts[1:]:  # [0] is Chromium's own default one
                    await context.close()
                await connected.close()
            return


@contextlib.contextmanager
def running_billboard(folder: Path) -> Iterator[Billboard]:
    """A headless billboard (`python -m billboard --headless --no-sound`), its relay's
    tokens and its phone number set by a config file, stopped with SIGTERM."""
    config = folder / "venue.toml"
    config.write_text(
        f'[relay]\noperator_token = "{OPERATOR}"\nbillboard_token = "{BILLBOARD}"\n'
        f'publisher_token = "{PUBLISHER}"\n[billboard]\nphone = "{PHONE_NUMBER}"\n'
    )
    port = free_port()
    log_path = folder / "billboard.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            billboard_command(port, "--config", str(config)),
            cwd=ROOT,
            env={**os.environ, **HEADLESS_ENV},
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            line = proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the billboard did not start: {log_path.read_text()[-2000:]}")
            if b"health:" in line:
                break
        # Whatever it prints later must never fill the pipe and stall it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield Billboard(port, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def billboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Billboard]:
    """One headless billboard for the module (`running_billboard`)."""
    with running_billboard(tmp_path_factory.mktemp("billboard")) as running:
        yield running


@pytest.fixture
def own_billboard(tmp_path: Path) -> Iterator[Billboard]:
    """A headless billboard for this test alone: one it may kill."""
    with running_billboard(tmp_path) as running:
        yield running
