"""What the web pages' tests share: the devices the pages are opened on, opening a
keypad and waiting for it to be online, a relay that can stop and start on its port,
plain subscribers and what they receive, and a `state` as the billboard publishes it.
The fixtures (Chromium, the browser, a headless billboard) are in conftest.py."""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from relay.app import create_app, listen
from relay.config import RelayConfig
from relay.contract.events import is_caller_id
from tests.services import service_unavailable
from tests.support.relay import BILLBOARD, OPERATOR, PUBLISHER

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

# Screenshots land here for a human to look at (override with DIALJAM_ARTIFACTS).
ARTIFACTS = Path(
    os.environ.get("DIALJAM_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

# How long a page may take to show what it should, or to load. Chromium, the relay
# and the test share the machine: on two cores that other work keeps busy, a page
# that shows a change in 100 ms when idle can take seconds (Playwright's own defaults,
# 5 s for an expectation, are sized for an idle desktop). A page that never gets
# there still fails, only later. Each test's whole budget is `TEST_BUDGET_S`.
# The installation's own number, shown on the banner and the wall mirror: public.
PHONE_NUMBER = "+1 555 0100"

PAGE_WAIT_S = 30.0
NAVIGATION_WAIT_S = 60.0
TEST_BUDGET_S = 240


async def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh browser context (its own storage: a new person) whose pages wait as
    long as a loaded machine needs (`PAGE_WAIT_S`, `NAVIGATION_WAIT_S`)."""
    context = await browser.new_context(**options)
    context.set_default_timeout(PAGE_WAIT_S * 1000)
    context.set_default_navigation_timeout(NAVIGATION_WAIT_S * 1000)
    return context


# The keypad asks a first-time visitor for a nickname before showing the pad; a test
# that is not about the nickname has been asked already (and skipped it).
ASKED_ALREADY = "try { localStorage.setItem('dialjam.asked', 'yes') } catch {}"


async def open_keypad(
    browser: Browser, base_url: str, query: str = "", ask_nick: bool = False, **context: Any
) -> Page:
    """A keypad in a fresh context (its own sessionStorage: a new caller), connected;
    with `ask_nick`, as a first-time visitor who is asked for a nickname."""
    ctx = await new_context(browser, **context)
    if not ask_nick:
        await ctx.add_init_script(ASKED_ALREADY)
    page = await ctx.new_page()
    await page.goto(f"{base_url}/keypad{query}")
    await wait_online(page)
    return page


async def wait_online(page: Page, timeout_s: float = PAGE_WAIT_S) -> None:
    await page.wait_for_selector('#link[data-state="online"]', timeout=timeout_s * 1000)


class RelayOnPort:
    """A relay on a port of our choosing, to stop and start again on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        config = RelayConfig(
            host="127.0.0.1",
            port=self.port,
            operator_token=OPERATOR,
            billboard_token=BILLBOARD,
            publisher_token=PUBLISHER,
        )
        self.runner = await listen(
            create_app(config), "127.0.0.1", self.port, shutdown_timeout=2.0, reuse_address=True
        )

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


def frame(channel: str, data: dict[str, Any], **extra: Any) -> str:
    return orjson.dumps({"type": "publisher", "id": channel, "data": data, **extra}).decode()


async def subscribe(
    session: aiohttp.ClientSession, ws_url: str, channel: str
) -> aiohttp.ClientWebSocketResponse:
    """A plain (seed-style) subscriber: it receives each event's `data` as one frame."""
    ws = await session.ws_connect(ws_url)
    await ws.send_str(orjson.dumps({"type": "subscriber", "id": channel}).decode())
    return ws


class Billboard:
    """A real headless billboard (its relay embedded) with tokens we know."""

    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.process = process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


async def received(
    ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = PAGE_WAIT_S
) -> list[Any]:
    """The next `n` events a plain subscriber receives."""
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            out.append(orjson.loads(msg.data))
    return out


async def synced(ws: aiohttp.ClientWebSocketResponse) -> None:
    """The relay has handled every frame sent on `ws` so far (it answers in order)."""
    await ws.send_str('{"type":"ping"}')
    assert (await received(ws, 1)) == [{"type": "pong"}]


async def caller_of(page: Page) -> str:
    """The caller of the session the relay gave this tab (kept in sessionStorage)."""
    await page.wait_for_function("sessionStorage.getItem('dialjam.session') !== null")
    caller: str = await page.evaluate(
        "JSON.parse(sessionStorage.getItem('dialjam.session')).caller"
    )
    assert is_caller_id(caller)
    return caller


def sample_state(**changes: Any) -> dict[str, Any]:
    """A `state` as the billboard publishes it: four of eight tracks taken, three waiting,
    one caller kicked."""
    colors = [
        "#e4572e",
        "#8a5cf6",
        "#17bebb",
        "#ffc914",
        "#76b041",
        "#2e86ab",
        "#f2a1c4",
        "#c0c0c0",
    ]
    names = ["drums", "bass", "chords", "lead", "pluck", "pad", "bells", "percussion"]
    who = {0: "…12", 1: "Ada", 2: "…07", 4: "night owl"}
    state = {
        "event": "state",
        "tempo": 112.0,
        "key": "F#",
        "scale": "dorian",
        "style": "house",
        "step": 37,
        "facade": {"floors": 7, "bays": 8},
        "tracks": [
            {
                "name": name,
                "color": colors[i],
                "caller": f"c-00000000{i:02d}" if i in who else None,
                "display": who.get(i),
                "muted": i == 2,
            }
            for i, name in enumerate(names)
        ],
        "line": ["c-0000000101", "c-0000000102", "c-0000000103"],
        "waiting": [
            {"caller": "c-0000000101", "display": "…31"},
            {"caller": "c-0000000102", "display": None},
            {"caller": "c-0000000103", "display": "Zoe"},
        ],
        "line_length": 3,
        "banned": [{"caller": "c-0000000201", "display": "…44", "ban_s": 95}],
        "lit": [[6 - i % 7, i, colors[i], 0.9] for i in range(8)],
        "attract": False,
        "paused": False,
        "hud": {
            "fps": 59.8,
            "midi_port": "FluidSynth",
            "latency_ms": 2.14,
            "late_ms": 0.4,
            "relay": "connected",
        },
    }
    state.update(changes)
    return state


# -- the console, the wall mirror and axe-core, as their tests open and check them ------


async def open_console(
    browser: Browser, base_url: str, fragment: str = f"#token={OPERATOR}", **context: Any
) -> Page:
    """The console in a fresh context, connected; any script error fails the test."""
    ctx = await new_context(browser, **context)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{base_url}/console?channel=dialjam{fragment}")
    from playwright.async_api import expect

    await expect(page.locator("#link")).to_have_attribute("data-state", "online")
    setattr(page, "script_errors", errors)  # noqa: B010 — read back by the tests
    return page


async def state_where(
    ws: aiohttp.ClientWebSocketResponse,
    check: Callable[[dict[str, Any]], bool],
    timeout: float = PAGE_WAIT_S,
) -> dict[str, Any]:
    """The first `state` the billboard publishes that passes `check`."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            data: dict[str, Any] = orjson.loads(msg.data)
            if data.get("event") == "state" and check(data):
                return data


def track_named(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in state["tracks"] if t["name"] == name)


async def open_wall(browser: Browser, base_url: str, **context: Any) -> Page:
    ctx = await new_context(browser, **context)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    setattr(page, "script_errors", errors)  # noqa: B010 — read back by the tests
    await page.goto(f"{base_url}/wall?channel=dialjam")
    return page


def axe_source() -> str:
    try:
        files = importlib.resources.files("axe_playwright_python")
    except ModuleNotFoundError:
        service_unavailable("axe-core is not installed", "pip install -e '.[test]'")
    return files.joinpath("axe.min.js").read_text(encoding="utf-8")


async def violations(page: Page, source: str) -> list[str]:
    """What axe-core finds on the page as it stands (DevTools evaluates the script, so
    the page's own Content-Security-Policy stays as it is)."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(source + "\n;0")
    found = await page.evaluate("axe.run(document).then(r => r.violations)")
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in found]
