"""What one keypad costs a phone's data plan, measured in a real Chromium (the
WebSocket frames DevTools reports it received) against a real headless billboard:
while eight callers play and while nobody does (two shows, the same minute), ≤ 10 KB a
minute; and not one other caller's pseudonym among them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest

from tests.support.processes import start_billboard
from tests.support.relay import PUBLISHER
from tests.web.pages import PHONE, caller_of, frame, open_keypad, received, subscribe, synced

if TYPE_CHECKING:
    from playwright.async_api import CDPSession, Page

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails (CI=true) or skips, saying what to install
    expect = None

# The window: a minute playing and a minute with nobody playing, the same
# minute on two shows. The whole test stays under two minutes.
WINDOW_S = 60.0
BUDGET_BYTES_PER_MINUTE = 10_000
PHONES = 7  # with the keypad itself, eight callers play

pytestmark = pytest.mark.timeout(240)


class Frames:
    """The WebSocket frames one page received, as DevTools saw them."""

    def __init__(self) -> None:
        self.payloads: list[str] = []

    def on_frame(self, event: dict[str, Any]) -> None:
        self.payloads.append(event["response"]["payloadData"])

    def bytes_since(self, start: int) -> int:
        """Bytes on the wire of frames[start:]: payload and the server's frame header
        (RFC 6455 §5.2: 2 bytes, 4 past 125 bytes of payload, 10 past 65,535)."""
        total = 0
        for payload in self.payloads[start:]:
            n = len(payload.encode())
            total += n + (2 if n < 126 else 4 if n < 65536 else 10)
        return total


async def watch(page: Page) -> tuple[CDPSession, Frames]:
    frames = Frames()
    cdp = await page.context.new_cdp_session(page)
    cdp.on("Network.webSocketFrameReceived", frames.on_frame)
    await cdp.send("Network.enable")
    return cdp, frames


def callers_named(payloads: list[str]) -> set[str]:
    """Every caller id anywhere in what the page received."""
    named: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("caller", "caller_id") and isinstance(item, str):
                    named.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for payload in payloads:
        with contextlib.suppress(orjson.JSONDecodeError):
            walk(orjson.loads(payload))
    return named


async def test_a_keypad_receives_under_10_kb_a_minute_playing_or_waiting_and_no_one_elses_id(
    browser: Any,
) -> None:
    # Two shows side by side for the same minute: eight callers play on one, nobody on
    # the other; a keypad is open on each.
    started = await asyncio.gather(start_billboard(), start_billboard(), return_exceptions=True)
    for one in started:
        if isinstance(one, BaseException):  # the other is not left running
            for other in started:
                if not isinstance(other, BaseException):
                    other[0].kill()
                    await other[0].wait()
            raise one
    (proc, port), (quiet_proc, quiet_port) = started  # type: ignore[misc]
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    # The billboards' output must never fill a pipe and stall them during the minute.
    drains = [
        asyncio.create_task(stream.read())
        for p in (proc, quiet_proc)
        for stream in (p.stdout, p.stderr)
        if stream
    ]
    try:
        async with aiohttp.ClientSession() as session:
            street = await subscribe(session, ws_url, "dialjam")
            await synced(street)
            page = await open_keypad(browser, base, **PHONE)
            me = await caller_of(page)
            _, frames = await watch(page)
            # Opening the page took no track: nothing was published for it.
            with pytest.raises(TimeoutError):
                await received(street, 1, timeout=2.0)
            quiet_page = await open_keypad(browser, f"http://127.0.0.1:{quiet_port}", **PHONE)
            quiet_me = await caller_of(quiet_page)

            # --- eight callers play: seven phones and this keypad, at human rates ---
            phones = await session.ws_connect(f"{ws_url}?token={PUBLISHER}")
            callers = [f"c-phone{n}" for n in range(PHONES)]
            for caller in callers:
                await phones.send_str(frame("dialjam", {"event": "join", "caller": caller}))
            await page.get_by_role("button", name="5", exact=True).tap()
            await expect(page.locator("#said")).to_have_attribute("data-state", "playing")
            # --- meanwhile nobody plays on the other show; its keypad stays open ---
            _, frames_idle = await watch(quiet_page)
            rng = random.Random(7)
            start, began = len(frames.payloads), time.monotonic()
            presses = 0
            while time.monotonic() - began < WINDOW_S:
                for caller in callers:
                    digit = rng.choice("0123456789*#")
                    data = {"event": "digit", "caller": caller, "digit": digit}
                    await phones.send_str(frame("dialjam", data))
                await page.keyboard.press(rng.choice("123456789"))
                presses += PHONES + 1
                await asyncio.sleep(0.5)  # two presses a second each
            elapsed = time.monotonic() - began
            playing = frames.bytes_since(start) * 60 / elapsed
            idle = frames_idle.bytes_since(0) * 60 / elapsed
            state = await page.locator("#said").get_attribute("data-state")
            assert state == "playing", state

            print(
                f"keypad received {playing / 1000:.2f} KB/min while 8 play ({presses} presses), "
                f"{idle / 1000:.2f} KB/min while nobody plays"
            )
            assert playing <= BUDGET_BYTES_PER_MINUTE, playing
            assert idle <= BUDGET_BYTES_PER_MINUTE, idle
            assert callers_named(frames.payloads) <= {me}, callers_named(frames.payloads) - {me}
            assert not any(caller in payload for payload in frames.payloads for caller in callers)
            assert callers_named(frames_idle.payloads) <= {quiet_me}
            assert any('"digest"' in payload for payload in frames_idle.payloads)
    finally:
        for p in (proc, quiet_proc):
            p.send_signal(signal.SIGTERM)
        for p in (proc, quiet_proc):
            await asyncio.wait_for(p.wait(), 15)
        for drain in drains:
            drain.cancel()
