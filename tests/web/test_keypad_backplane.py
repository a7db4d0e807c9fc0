"""The keypad in a real headless Chromium against a relay that shares its channels
through a real redis-server: a key the relay refuses with backplane_unavailable (Redis
away) is sent again while it still belongs to the music, or the page says plainly that
keys were not played; never lost in silence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import orjson
import pytest

from tests.support.redis import RedisServer
from tests.support.relay import StartRelay
from tests.web.pages import (
    PAGE_WAIT_S,
    TEST_BUDGET_S,
    caller_of,
    open_keypad,
    subscribe,
    synced,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails (CI=true) or skips, saying what to install
    expect = None

pytestmark = pytest.mark.timeout(TEST_BUDGET_S)


async def digits_until(
    listener: aiohttp.ClientWebSocketResponse, caller: str, digit: str
) -> list[str]:
    """The caller's digits a plain subscriber hears, up to and with `digit`."""
    heard: list[str] = []
    while digit not in heard:
        msg = await listener.receive(PAGE_WAIT_S)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        data = orjson.loads(msg.data)
        if data.get("caller") == caller and data.get("event") == "digit":
            heard.append(data["digit"])
    return heard


async def test_a_key_refused_while_redis_is_away_is_sent_again_or_said_not_played(
    start_relay: StartRelay, browser: Browser, redis_server: RedisServer
) -> None:
    relay = await start_relay(backplane=redis_server.url)
    page = await open_keypad(browser, relay.url)
    caller = await caller_of(page)
    said = page.locator("#said-main")
    async with aiohttp.ClientSession() as session:
        listener = await subscribe(session, relay.ws_url, "dialjam")
        await synced(listener)

        # Redis gone for longer than a key stays fresh: the page says so.
        redis_server.kill()
        await page.keyboard.press("5")
        await expect(said).to_have_text("Some keys were not played")
        # Gone for a moment: the key is sent again, and plays once Redis is back.
        await page.keyboard.press("7")
        await expect(said).to_have_text("Sending your keys again…")
        redis_server.start()
        heard = await digits_until(listener, caller, "7")
        assert heard.count("7") == 1 and len(heard) == len(set(heard)), heard
        # The last key sent again went through: the page says where the caller is.
        await expect(said).to_have_text("Finding you an instrument…")
