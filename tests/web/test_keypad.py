"""The mobile keypad in a real headless Chromium against a real relay (and a real
headless billboard): what it publishes, what it shows, how it copes with the network."""

from __future__ import annotations

import asyncio
import re
import signal
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest

from billboard.engine.tracks import DEFAULT_TRACKS
from tests.support.processes import free_port, start_billboard
from tests.support.relay import BILLBOARD, PUBLISHER, StartRelay
from tests.web.pages import (
    ARTIFACTS,
    ASKED_ALREADY,
    PAGE_WAIT_S,
    PHONE,
    TEST_BUDGET_S,
    RelayOnPort,
    caller_of,
    frame,
    new_context,
    open_keypad,
    received,
    subscribe,
    synced,
    wait_online,
)

pytestmark = pytest.mark.timeout(TEST_BUDGET_S)

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails (CI=true) or skips, saying what to install
    expect = None

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Response


async def test_opening_takes_no_track_and_the_first_tap_joins_before_its_digit(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    listener = await subscribe(relay.session, relay.ws_url, "dialjam")
    await synced(listener)
    page = await open_keypad(browser, relay.url, **PHONE)
    caller = await caller_of(page)
    await expect(page.locator("#said-main")).to_have_text("Press any key to play")
    with pytest.raises(TimeoutError):  # an onlooker who only opened the page holds nothing
        await received(listener, 1, timeout=1.0)
    for name in ("1", "5", "9", "Hash"):
        await page.get_by_role("button", name=name, exact=True).tap()
    events = await received(listener, 5)
    assert events[0] == {
        "event": "join",
        "caller": caller,
        "source": "web",
        "display": None,
        "nick": None,
    }
    assert events[1:] == [
        {"event": "digit", "caller": caller, "digit": d, "source": "web"} for d in "159#"
    ]
    # A reload keeps the caller's pseudonym; leaving the page says goodbye (best effort),
    # and the page opened again takes no place until a key is pressed.
    await page.reload()
    await wait_online(page)
    assert await caller_of(page) == caller
    leave = (await received(listener, 1))[0]
    assert leave == {"event": "leave", "caller": caller, "reason": "closed"}
    with pytest.raises(TimeoutError):
        await received(listener, 1, timeout=0.5)


async def test_the_keypad_tells_its_caller_what_the_billboard_said_and_nothing_else(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay(channel="plaza.north")  # the installation's: it exists
    page = await open_keypad(browser, relay.url, "?channel=plaza.north", **PHONE)
    caller = await caller_of(page)
    billboard = await relay.connect(headers={"Authorization": f"Bearer {BILLBOARD}"})
    said = page.locator("#said-main")

    async def tell(data: dict[str, Any]) -> None:
        await billboard.send_str(frame("plaza.north:callers", data))

    await page.keyboard.press("5")  # joins
    await tell({"event": "assign", "caller": caller, "track": None, "color": None, "line": 3})
    await expect(said).to_have_text("You are 3rd in line")
    bass = {"event": "assign", "caller": caller, "track": "bass", "color": "#8a5cf6"}
    await tell({**bass, "line": 0, "mode": "chord_tones", "region": [2, 3]})
    await expect(said).to_have_text("You are the bass")
    await expect(page.locator("#keys-help")).to_contain_text("notes of the chord")
    await expect(page.locator("#where")).to_contain_text("windows 3–5")
    assert await page.locator("#said").get_attribute("data-color") == "#8a5cf6"
    swatch = await page.locator("#swatch").evaluate("e => getComputedStyle(e).backgroundColor")
    assert swatch == "rgb(138, 92, 246)"
    await tell({"event": "leave", "caller": caller, "reason": "turn"})
    await expect(said).to_have_text("Your turn is over — press a key to play again")
    await tell({"event": "leave", "caller": caller, "reason": "full"})
    await expect(said).to_have_text("The line is full")
    await tell({"event": "leave", "caller": caller, "reason": "kicked", "ban_s": 95})
    await expect(said).to_have_text("The operator took your turn")
    await expect(page.locator("#said-more")).to_contain_text("You can play again in 1:3")
    await page.keyboard.press("5")  # pressing again says why nothing plays
    await expect(said).to_contain_text("Not yet — wait 1:3")


async def test_a_keypad_shows_its_instrument_from_a_real_billboard_and_a_later_one_its_place(
    browser: Browser,
) -> None:
    proc, port = await start_billboard()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            watcher = await subscribe(session, f"ws://127.0.0.1:{port}/ws", "dialjam:state")
            await synced(watcher)
            first = await open_keypad(browser, base, **PHONE)
            await first.get_by_role("button", name="5", exact=True).tap()
            # The first caller takes the lead, over the groove bed.
            await expect(first.locator("#said-main")).to_have_text("You are the lead")
            await expect(first.locator("#keys-help")).to_contain_text("notes of the scale")
            await expect(first.locator("#where")).to_contain_text("from the left")
            lead = next(t for t in DEFAULT_TRACKS if t.name == "lead")
            assert await first.locator("#said").get_attribute("data-color") == lead.color
            # Seven callers by phone take the other tracks, two more wait in line…
            phones = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?token={PUBLISHER}")
            for n in range(9):
                join = {"event": "join", "caller": f"c-phone{n}", "source": "twilio"}
                await phones.send_str(frame("dialjam", join))
            told = set()
            async with asyncio.timeout(PAGE_WAIT_S):
                while len(told) < 9:
                    data = orjson.loads((await watcher.receive()).data)
                    if data.get("event") == "assign" and data["caller"].startswith("c-phone"):
                        told.add(data["caller"])
            # …so the next keypad is third in line.
            later = await open_keypad(browser, base, **PHONE)
            await later.keyboard.press("1")
            await expect(later.locator("#said-main")).to_have_text("You are 3rd in line")
            await expect(first.locator("#said-main")).to_have_text("You are the lead")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)


# Fifty Chromium tabs loading at once: about 20 s on two idle cores, minutes when other
# work keeps them busy. Each tab may take all of it (each waits for the others' CPU).
FIFTY_TABS_S = 300


@pytest.mark.timeout(FIFTY_TABS_S + 60)
async def test_fifty_keypads_at_once_deliver_every_digit(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    listener = await subscribe(relay.session, relay.ws_url, "dialjam")
    await synced(listener)
    # Five contexts of ten tabs: every tab has its own sessionStorage, so its own caller.
    contexts = [await new_context(browser) for _ in range(5)]
    for context in contexts:
        await context.add_init_script(ASKED_ALREADY)
    url = f"{relay.url}/keypad"

    async def play(page: Page) -> None:
        await page.goto(url, timeout=FIFTY_TABS_S * 1000)
        await wait_online(page, FIFTY_TABS_S)
        for key in "2580":
            await page.keyboard.press(key)

    # Read as the tabs play: a listener that stops reading stops answering the relay's
    # heartbeat pings, and is rightly dropped.
    listening = asyncio.create_task(received(listener, 50 * 5, timeout=FIFTY_TABS_S))
    async with asyncio.timeout(FIFTY_TABS_S):
        pages = await asyncio.gather(*(contexts[n % 5].new_page() for n in range(50)))
        await asyncio.gather(*(play(page) for page in pages))
        events = await listening
    by_caller: dict[str, list[str]] = {}
    for event in events:
        by_caller.setdefault(event["caller"], []).append(event.get("digit", event["event"]))
    assert len(by_caller) == 50
    assert all(played == ["join", "2", "5", "8", "0"] for played in by_caller.values())


async def test_every_control_has_an_accessible_name_and_screenshots_are_saved(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    billboard = await relay.connect(headers={"Authorization": f"Bearer {BILLBOARD}"})
    desktop = {"viewport": {"width": 1280, "height": 800}}
    small = {**PHONE, "viewport": {"width": 320, "height": 568}}
    sizes = {"phone_390x844": PHONE, "phone_320x568": small, "desktop_1280x800": desktop}
    for label, context in sizes.items():
        page = await open_keypad(browser, relay.url, **context)
        await page.keyboard.press("2")
        assign = {"event": "assign", "caller": await caller_of(page), "track": "bass"}
        await billboard.send_str(frame("dialjam:callers", {**assign, "color": "#8a5cf6"}))
        await expect(page.locator("#said-main")).to_have_text("You are the bass")
        # Nothing sticks out sideways, even at 320 px, and all twelve keys are on screen…
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= context["viewport"]["width"]
        # …with big targets (WCAG's 44 px and then some).
        for key in await page.locator("#pad button").all():
            assert await key.is_visible()
            # Its laid-out size: a key still flashing from the press is drawn scaled down.
            w, h = await key.evaluate("e => [e.offsetWidth, e.offsetHeight]")
            assert w >= 56 and h >= 56, (w, h)
        await page.screenshot(path=ARTIFACTS / f"keypad_{label}.png", full_page=True)

    # The accessibility tree as Chromium exposes it to screen readers.
    cdp = await page.context.new_cdp_session(page)
    tree = await cdp.send("Accessibility.getFullAXTree")
    controls = [
        (node["role"]["value"], node.get("name", {}).get("value", ""))
        for node in tree["nodes"]
        if node.get("role", {}).get("value") in {"button", "textbox", "checkbox", "link"}
    ]
    assert controls and all(name.strip() for _, name in controls), controls
    names = {name for role, name in controls if role == "button"}
    assert names >= {*"0123456789", "Star", "Hash", "Sound preview", "Nickname"}


async def test_the_keypad_works_with_the_keyboard_alone(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    listener = await subscribe(relay.session, relay.ws_url, "dialjam")
    await synced(listener)
    page = await open_keypad(browser, relay.url)
    caller = await caller_of(page)
    await page.keyboard.press("4")
    await page.keyboard.press("*")
    # Tab reaches the keys with a visible focus ring; Enter presses the focused one.
    await page.keyboard.press("Tab")
    focused = page.locator(":focus")
    assert await focused.get_attribute("data-key") == "1"
    outline = await focused.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline not in ("", "none")
    await page.keyboard.press("Enter")
    # The sound toggle and the nickname are reachable too.
    while await focused.get_attribute("id") != "sound":
        await page.keyboard.press("Tab")
    await page.keyboard.press("Space")
    await expect(page.locator("#sound")).to_have_attribute("aria-pressed", "false")
    await page.keyboard.press("Tab")
    assert await focused.get_attribute("id") == "nick-change"
    await page.keyboard.press("Enter")
    assert await focused.get_attribute("id") == "nick"
    # Digits typed into the nickname are letters of a name, not notes; the page keeps
    # only what the facade may show.
    await page.keyboard.type("Ada-7 <b>")
    await expect(page.locator("#nick")).to_have_value("Ada7 b")
    await page.keyboard.press("Enter")
    events = await received(listener, 5)
    assert [e.get("digit") for e in events[1:4]] == ["4", "*", "1"]
    assert events[4] == {
        "event": "join",
        "caller": caller,
        "source": "web",
        "display": None,
        "nick": "Ada7 b",
    }
    # A nickname that could be a phone number never leaves the page.
    await page.get_by_role("button", name="Nickname: Ada7 b").click()
    await page.locator("#nick").fill("555 1234")
    await page.keyboard.press("Enter")
    await expect(page.locator("#nick-help")).to_contain_text("must not look like a phone number")
    with pytest.raises(TimeoutError):
        await received(listener, 1, timeout=0.3)
    # Remembered: a new page of this browser has the tones off and the saved nickname.
    again = await page.context.new_page()
    await again.goto(f"{relay.url}/keypad")
    await expect(again.locator("#sound")).to_have_attribute("aria-pressed", "false")
    await expect(again.get_by_role("button", name="Nickname: Ada7 b")).to_be_visible()


async def test_the_keypad_says_when_the_installation_is_offline_and_reconnects_by_itself(
    browser: Browser,
) -> None:
    relay = RelayOnPort(free_port())
    await relay.start()
    try:
        page = await open_keypad(browser, f"http://127.0.0.1:{relay.port}", **PHONE)
        await relay.stop()
        link = page.locator("#link")
        await expect(link).to_have_attribute("data-state", "offline")
        await expect(page.locator("#said-main")).to_have_text("The installation is offline")
        await expect(page.locator("#said-more")).to_contain_text("not played later")
        assert "offline" in (await page.locator("#pad").get_attribute("class") or "")
        await page.keyboard.press("7")  # not kept for later: music is live
        await expect(page.locator("#said-main")).to_have_text(
            "Not played: the installation is offline"
        )
        await relay.start()
        async with aiohttp.ClientSession() as session:
            listener = await subscribe(session, f"ws://127.0.0.1:{relay.port}/ws", "dialjam")
            await synced(listener)
            await wait_online(page)
            await page.keyboard.press("8")
            events = await received(listener, 2)
            assert [e["event"] for e in events] == ["join", "digit"]
            assert events[1]["digit"] == "8"  # the 7 pressed while offline never comes
    finally:
        await relay.stop()


async def test_the_whole_keypad_page_weighs_under_60_kb(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    context = await new_context(browser, **PHONE)
    page = await context.new_page()
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    await page.goto(f"{relay.url}/")  # the QR code's bare address serves the keypad too
    await wait_online(page)
    total = 0
    for response in responses:
        sizes = await response.request.sizes()
        total += sizes["responseHeadersSize"] + sizes["responseBodySize"]
    paths = sorted(re.sub(r"^https?://[^/]+", "", r.url) for r in responses)
    assert paths == [
        "/",
        "/css/keypad.css",
        "/js/contract.js",  # the contract, generated from relay/contract
        "/js/keypad.js",
        "/js/preview.js",  # a short preview of the caller's instrument
        "/js/relay.js",
        "/session",  # the caller session the relay stamps on the tab's events
    ]
    print(f"keypad page: {total} bytes in {len(responses)} responses")
    assert total < 60_000


async def test_a_link_with_an_invalid_channel_is_refused_plainly(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    context = await new_context(browser, **PHONE)
    page = await context.new_page()
    await page.goto(f"{relay.url}/keypad?channel=no%20spaces%21")
    await expect(page.locator("#said-main")).to_have_text("This link does not lead to a show")
    await expect(page.locator("#said-more")).to_contain_text("channel name is not valid")
    await expect(page.get_by_role("button", name="5", exact=True)).to_be_disabled()
