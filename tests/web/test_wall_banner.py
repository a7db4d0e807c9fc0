"""The wall mirror invites as the billboard's screen does — the installation's number and
a QR code of the keypad that a phone can read — and says over the whole wall, at once,
when the billboard is gone; axe-core finds no violation on it."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp
import pytest

from tests.support.pixels import qr_text
from tests.web.pages import (
    ARTIFACTS,
    DESKTOP,
    PAGE_WAIT_S,
    PHONE_NUMBER,
    TEST_BUDGET_S,
    Billboard,
    axe_source,
    open_wall,
    state_where,
    subscribe,
    violations,
)

pytestmark = pytest.mark.timeout(TEST_BUDGET_S)

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails (CI=true) or skips, saying what to install
    expect = None

if TYPE_CHECKING:
    from playwright.async_api import Browser

# Detection is a closed socket (the relay dies with the billboard) or 2 s of silence;
# the bound leaves a loaded two-core machine room to draw it.
GONE_WITHIN_S = 10.0


async def test_the_wall_shows_the_number_and_a_qr_code_of_the_keypad_that_decodes(
    billboard: Billboard, browser: Browser
) -> None:
    async with aiohttp.ClientSession() as session:
        watcher = await subscribe(session, billboard.ws_url, "dialjam:state")
        state = await state_where(watcher, lambda s: bool(s.get("banner")))
    keypad = state["banner"]["keypad"]
    assert state["banner"]["phone"] == PHONE_NUMBER
    assert keypad.endswith(f":{billboard.port}/keypad?channel=dialjam")  # the real port
    wall = await open_wall(browser, billboard.url, **DESKTOP)
    await expect(wall.locator("#status")).to_have_attribute("data-state", "live")
    await expect(wall.locator("#call")).to_have_text(f"Call {PHONE_NUMBER}")
    qr = wall.locator("#qr")
    await expect(qr).to_be_visible()
    await wall.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "wall_qr.png"
    await qr.screenshot(path=shot)
    assert qr_text(shot) == keypad
    await wall.screenshot(path=ARTIFACTS / "wall_banner_desktop_1280x800.png")
    # The building stays clear of the invitation.
    box = await wall.locator("#invite").bounding_box()
    rect = await wall.evaluate(
        "window.dialjamWall.windowRect(0, window.dialjamWall.facade.bays - 1)"
    )
    assert box is not None and rect["x"] + rect["w"] < box["x"]
    assert await violations(wall, axe_source()) == []
    assert wall.script_errors == []  # type: ignore[attr-defined]


async def test_the_wall_says_over_the_whole_wall_when_the_billboard_dies(
    own_billboard: Billboard, browser: Browser
) -> None:
    wall = await open_wall(browser, own_billboard.url, **DESKTOP)
    await expect(wall.locator("#status")).to_have_attribute("data-state", "live")
    await expect(wall.locator("#gone")).to_be_hidden()
    own_billboard.process.kill()
    killed = time.monotonic()
    await expect(wall.locator("#gone")).to_be_visible(timeout=PAGE_WAIT_S * 1000)
    took = time.monotonic() - killed
    print(f"wall mirror: the billboard's death shown {took:.2f} s after the kill")
    assert took < GONE_WITHIN_S
    await expect(wall.locator("#gone-title")).to_have_text("The billboard is not playing")
    await expect(wall.locator("#status")).to_have_attribute("data-state", "gone")
    # Big: over the whole wall, its title in letters 8 % of the screen's height or more.
    cover = await wall.locator("#gone").bounding_box()
    assert cover and cover["width"] >= 1280 and cover["height"] >= 800
    size = "e => parseFloat(getComputedStyle(e).fontSize)"
    assert await wall.locator("#gone-title").evaluate(size) >= 64
    await asyncio.sleep(0.2)
    await wall.screenshot(path=ARTIFACTS / "wall_gone_desktop_1280x800.png")
    assert await violations(wall, axe_source()) == []
    assert wall.script_errors == []  # type: ignore[attr-defined]
