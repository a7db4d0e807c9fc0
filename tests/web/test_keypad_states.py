"""Every state of the keypad, as a passer-by sees it, in a real Chromium: a screenshot
of each at 390×844, at 320 px wide and at 200 % text (in tests/artifacts/), the pad on
screen in all of them at 390×844, and axe-core finding no violation in any."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from tests.support.processes import free_port
from tests.support.relay import BILLBOARD
from tests.web.pages import (
    ARTIFACTS,
    PHONE,
    TEST_BUDGET_S,
    RelayOnPort,
    axe_source,
    caller_of,
    frame,
    new_context,
    open_keypad,
    violations,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails (CI=true) or skips, saying what to install
    expect = None

pytestmark = pytest.mark.timeout(TEST_BUDGET_S)

SIZES: dict[str, tuple[dict[str, Any], bool]] = {
    "390x844": (PHONE, False),
    "320x568": ({**PHONE, "viewport": {"width": 320, "height": 568}}, False),
    "390x844_text200": (PHONE, True),
}
DIGEST = {
    "event": "digest", "tempo": 112, "key": "F#", "scale": "dorian", "playing": 6,
    "waiting": 2, "bays": 8, "paused": False,
}  # fmt: skip

# A press on a key, and the key's colour right after it, before anything else runs.
PRESS_AND_READ_COLOUR = """e => {
  e.dispatchEvent(new PointerEvent("pointerdown", {button: 0, bubbles: true, cancelable: true,
                                                   composed: true, isPrimary: true}));
  return getComputedStyle(e).backgroundColor;
}"""


async def check(page: Page, name: str, state: str, axe: str, above_fold: bool) -> None:
    await expect(page.locator("#said")).to_have_attribute("data-state", state)
    await page.screenshot(path=ARTIFACTS / f"keypad_{state}_{name}.png")
    if state == "nickname":
        return
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (name, state, width)  # type: ignore[index]
    if above_fold:
        pad = await page.locator("#pad").bounding_box()
        assert pad and pad["y"] + pad["height"] <= 844, (name, state, pad)
    assert await violations(page, axe) == [], (name, state)


async def test_every_keypad_state_is_honest_on_screen_and_to_a_screen_reader(
    browser: Browser,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    axe = axe_source()
    for name, (device, big_text) in SIZES.items():
        relay = RelayOnPort(free_port())
        await relay.start()
        base = f"http://127.0.0.1:{relay.port}"
        try:
            async with aiohttp.ClientSession() as session:
                billboard = await session.ws_connect(
                    f"ws://127.0.0.1:{relay.port}/ws",
                    headers={"Authorization": f"Bearer {BILLBOARD}"},
                )

                async def tell(data: dict[str, Any], ws: Any = billboard) -> None:
                    await ws.send_str(frame("dialjam:callers", data))

                page = await open_keypad(browser, base, ask_nick=True, **device)
                if big_text:  # the browser's text size at 200 %
                    await page.evaluate("document.documentElement.style.fontSize = '200%'")
                fold = device["viewport"]["height"] == 844
                # Asked once, gently, before the pad; skippable.
                await expect(page.locator("#nick-form")).to_be_visible()
                await page.screenshot(path=ARTIFACTS / f"keypad_nickname_{name}.png")
                await page.get_by_role("button", name="Skip").click()
                me = await caller_of(page)
                await tell(DIGEST)
                await expect(page.locator("#said-more")).to_contain_text("6 people play")
                await check(page, name, "ready", axe, fold)
                await tell({**DIGEST, "paused": True})
                await check(page, name, "resting", axe, fold)
                await tell(DIGEST)
                await page.keyboard.press("3")  # the first press takes a place
                await tell({"event": "assign", "caller": me, "track": None, "color": None,
                            "line": 2})  # fmt: skip
                await check(page, name, "line", axe, fold)
                await tell({"event": "assign", "caller": me, "track": "drums",
                            "color": "#f97316", "line": 0, "mode": "drums",
                            "region": [0, 2]})  # fmt: skip
                await expect(page.locator("#keys-help")).to_have_text(
                    "Each key picks a beat · # a fill · * an accent"
                )
                await expect(page.locator("#where")).to_contain_text("windows 1–2 of 8")
                await check(page, name, "playing", axe, fold)
                # The pressed key flashes in the track's colour, black on orange.
                key = page.get_by_role("button", name="5", exact=True)
                # Read in the same turn of the page's loop as the press: the flash lasts
                # 160 ms, which a busy machine can let pass between two calls.
                colour = await key.evaluate(PRESS_AND_READ_COLOUR)
                assert colour == "rgb(249, 115, 22)"
                await page.screenshot(path=ARTIFACTS / f"keypad_pressed_{name}.png")
                await tell({"event": "leave", "caller": me, "reason": "full"})
                await check(page, name, "full", axe, fold)
                await tell({"event": "leave", "caller": me, "reason": "kicked", "ban_s": 105})
                await expect(page.locator("#said-more")).to_contain_text("play again in 1:4")
                await check(page, name, "kicked", axe, fold)
                await tell({"event": "notice", "caller": me, "code": "unbanned"})  # undone
                await expect(page.locator("#said-main")).to_have_text("You may play again")
                await check(page, name, "lifted", axe, fold)
                await relay.stop()
                await check(page, name, "offline", axe, fold)
                await relay.start()
                context = await new_context(browser, **device)
                broken = await context.new_page()
                await broken.goto(f"{base}/keypad?channel=no%20spaces%21")
                if big_text:
                    await broken.evaluate("document.documentElement.style.fontSize = '200%'")
                await check(broken, name, "invalid", axe, fold)
        finally:
            await relay.stop()
