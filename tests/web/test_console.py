"""The operator's console in a real headless Chromium, against a real headless
billboard (or a relay with a stand-in billboard where only the page is under test):
who plays, kick, mute, tempo, key, scale, style, pause, panic, tokens, figures, keyboard."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import aiohttp
import pytest

from tests.support.relay import BILLBOARD, OPERATOR, PUBLISHER, StartRelay
from tests.web.pages import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    TEST_BUDGET_S,
    Billboard,
    caller_of,
    frame,
    new_context,
    open_console,
    open_keypad,
    received,
    sample_state,
    state_where,
    subscribe,
    synced,
    track_named,
)

pytestmark = pytest.mark.timeout(TEST_BUDGET_S)

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails (CI=true) or skips, saying what to install
    expect = None

if TYPE_CHECKING:
    from playwright.async_api import Browser


async def test_the_console_lists_callers_by_track_and_kick_frees_the_track_and_tells_the_keypad(
    billboard: Billboard, browser: Browser
) -> None:
    async with aiohttp.ClientSession() as session:
        watcher = await subscribe(session, billboard.ws_url, "dialjam:state")
        keypad = await open_keypad(browser, billboard.url, **PHONE)
        caller = await caller_of(keypad)
        await keypad.keyboard.press("5")  # the first key takes a track
        await expect(keypad.locator("#said-main")).to_have_text(re.compile(r"^You are the "))
        track = await keypad.locator("#said").get_attribute("data-track")
        assert track
        # A caller by phone: the billboard masks the number; the console shows only "…12".
        phone = await session.ws_connect(billboard.ws_url + "?token=" + PUBLISHER)
        await phone.send_str(frame("dialjam", {"event": "join", "caller": "4155559912"}))
        console = await open_console(browser, billboard.url)
        row = console.locator(f'#tracks li[data-caller="{caller}"]')
        await expect(row).to_contain_text(track)
        await expect(console.locator("#tracks")).to_contain_text("…12")
        assert "4155559912" not in await console.content()
        await expect(console.locator("#heard")).to_have_text("Billboard: live")

        await console.get_by_role("button", name=re.compile(f"^Kick the {track}\\b")).click()
        # Kick asks first (tests/web/test_console_operator.py): a second press kicks.
        await console.get_by_role(
            "button", name=re.compile(f"^Confirm: kick the {track}\\b")
        ).click()
        await state_where(watcher, lambda s: track_named(s, track)["caller"] is None)
        await expect(keypad.locator("#said-main")).to_have_text("The operator took your turn")
        await expect(console.locator(f'#tracks li:has(b:text-is("{track}"))')).to_have_attribute(
            "data-free", "true"
        )
        await expect(console.locator("#message")).to_contain_text("was removed")
        assert console.script_errors == []  # type: ignore[attr-defined]


async def test_the_console_works_from_the_keyboard_alone_and_its_commands_reach_the_billboard(
    billboard: Billboard, browser: Browser
) -> None:
    async with aiohttp.ClientSession() as session:
        watcher = await subscribe(session, billboard.ws_url, "dialjam:state")
        phone = await session.ws_connect(billboard.ws_url + "?token=" + PUBLISHER)
        await phone.send_str(frame("dialjam", {"event": "join", "caller": "4155550077"}))
        first = await state_where(
            watcher, lambda s: any(t["display"] == "…77" for t in s["tracks"])
        )
        track = next(t["name"] for t in first["tracks"] if t["display"] == "…77")
        console = await open_console(browser, billboard.url, **DESKTOP)
        await expect(console.locator("#tempo")).to_have_value(str(round(first["tempo"])))
        focused = console.locator(":focus")

        async def tab_to(selector: str) -> None:
            target = console.locator(selector)
            for _ in range(80):
                await console.keyboard.press("Tab")
                if await target.evaluate("e => e === document.activeElement"):
                    outline = await target.evaluate("e => getComputedStyle(e).outlineStyle")
                    assert outline not in ("", "none"), f"{selector} shows no focus"
                    return
            raise AssertionError(f"Tab never reached {selector}")

        # Mute the phone caller's track, from its own row.
        await tab_to(f'#tracks li:has(b:text-is("{track}")) button.mute')
        assert (await focused.get_attribute("aria-label") or "").startswith(f"Mute the {track}")
        await console.keyboard.press("Enter")
        await state_where(watcher, lambda s: track_named(s, track)["muted"] is True)
        # Tempo: + by a key press, then a number typed in.
        await tab_to("#tempo-up")
        await console.keyboard.press("Enter")
        bpm = round(first["tempo"]) + 4
        await state_where(watcher, lambda s: s["tempo"] == bpm)
        await console.locator("#tempo").focus()
        await console.keyboard.press("Control+A")
        await console.keyboard.type("96")
        await console.keyboard.press("Enter")
        await state_where(watcher, lambda s: s["tempo"] == 96)
        # Key and scale: arrow keys on the focused selects.
        await tab_to("#key")
        await console.keyboard.press("End")
        await state_where(watcher, lambda s: s["key"] == "B")
        await tab_to("#scale")
        await console.keyboard.press("ArrowDown")
        await state_where(watcher, lambda s: s["scale"] == "minor")
        # The groove bed's style, the last offered: none, the callers alone.
        await tab_to("#style")
        await console.keyboard.press("End")
        await state_where(watcher, lambda s: s["style"] == "none")
        await expect(console.locator("#style")).to_have_value("none")
        # Pause new callers, and back.
        await tab_to("#pause")
        await console.keyboard.press("Space")
        await state_where(watcher, lambda s: s["paused"] is True)
        await expect(console.locator("#pause")).to_have_attribute("aria-pressed", "true")
        await console.keyboard.press("Space")
        await state_where(watcher, lambda s: s["paused"] is False)
        await expect(console.locator("#pause")).to_have_attribute("aria-pressed", "false")
        # What the billboard reports comes back onto the page.
        await expect(console.locator("#f-music")).to_have_text("96 BPM · B minor")
        await expect(console.locator("#f-relay")).to_have_text("connected")
        # Leave the shared billboard as we found it.
        restore = {"tempo": {"bpm": first["tempo"]}, "key": {"key": first["key"]}}
        restore |= {"scale": {"name": first["scale"]}, "style": {"name": first["style"]}}
        for name, args in restore.items():
            command = {"event": "command", "name": name, "args": args}
            await phone.send_str(frame("dialjam:control", command, token=OPERATOR))
        assert console.script_errors == []  # type: ignore[attr-defined]


async def test_a_wrong_token_is_refused_plainly_and_the_right_one_can_be_typed_in(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    control = await subscribe(relay.session, relay.ws_url, "dialjam:control")
    await synced(control)
    console = await open_console(browser, relay.url, "#token=not-the-token", **PHONE)
    # The token never stays in the address bar.
    assert await console.evaluate("location.hash") == ""
    message = console.locator("#message")
    await expect(message).to_contain_text("The relay refused this operator token")
    form = console.get_by_label("Operator token")
    await expect(form).to_be_visible()
    await expect(form).to_be_focused()
    # The billboard's token is not the operator's either.
    await form.fill(BILLBOARD)
    await console.keyboard.press("Enter")
    await console.get_by_role("button", name="Panic: all notes off").click()
    await expect(message).to_contain_text("The relay refused this operator token")
    with pytest.raises(TimeoutError):
        await received(control, 1, timeout=0.3)
    # The right one works, and is kept for this tab only.
    await form.fill(OPERATOR)
    await console.keyboard.press("Enter")
    await expect(console.locator("#token-form")).to_be_hidden()
    await console.get_by_role("button", name="Panic: all notes off").click()
    assert await received(control, 1) == [{"event": "command", "name": "panic", "args": {}}]
    await expect(message).to_have_text("Sent: panic.")
    stored = await console.evaluate("sessionStorage.getItem('dialjam.operator.dialjam')")
    assert stored == OPERATOR
    # Without a token in the link, the console asks for one before anything else.
    bare = await open_console(browser, relay.url, "", **PHONE)
    await expect(bare.get_by_label("Operator token")).to_be_focused()
    await expect(bare.locator("#token-why")).to_contain_text("needs the operator token")
    assert console.script_errors == [] and bare.script_errors == []  # type: ignore[attr-defined]


async def test_the_console_shows_the_relays_figures_the_billboards_hud_and_when_it_goes_quiet(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    billboard = await relay.connect(headers={"Authorization": f"Bearer {BILLBOARD}"})
    context = await new_context(browser, **DESKTOP)
    console = await context.new_page()
    await console.clock.install()  # to jump past the silence below without waiting for it
    await console.goto(f"{relay.url}/console?channel=dialjam#token={OPERATOR}")
    await expect(console.locator("#heard")).to_have_text("Waiting for the billboard…")
    await expect(console.locator("#link")).to_have_attribute("data-state", "online")
    await billboard.send_str(frame("dialjam:state", sample_state()))
    await expect(console.locator("#heard")).to_have_text("Billboard: live")
    for figure, text in {
        "#f-fps": "60",
        "#f-midi": "FluidSynth",
        "#f-latency": "2.1 ms",
        "#f-late": "0.4 ms",
        "#f-relay": "connected",
        "#f-music": "112 BPM · F# dorian",
    }.items():
        await expect(console.locator(figure)).to_have_text(text)
    await expect(console.locator("#key")).to_have_value("F#")
    await expect(console.locator("#scale")).to_have_value("dorian")
    await expect(console.locator("#line li")).to_have_count(3)
    await expect(console.locator("#tracks li[data-free=false]")).to_have_count(4)
    # /healthz, polled every 2 s: this console and the stand-in billboard are connected.
    await console.clock.run_for(2100)
    health = await relay.healthz()
    assert health["connections"] == 2
    await expect(console.locator("#f-connections")).to_have_text("2")
    await expect(console.locator("#f-events")).to_have_text(re.compile(r"^\d+\.\d$"))
    await expect(console.locator("#f-drops")).to_have_text("0")
    # The billboard falls silent: the console says so, and for how long.
    await console.clock.run_for(4000)
    await expect(console.locator("#heard")).to_have_text(
        re.compile(r"^Billboard: silent for [3-9] s$")
    )
    await expect(console.locator("#heard")).to_have_attribute("data-state", "stale")
    await billboard.send_str(frame("dialjam:state", sample_state()))
    await expect(console.locator("#heard")).to_have_text("Billboard: live")


async def test_a_long_line_shows_its_front_and_how_many_more_wait(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    billboard = await relay.connect(headers={"Authorization": f"Bearer {BILLBOARD}"})
    console = await open_console(browser, relay.url, **DESKTOP)
    front = [f"c-{n:010d}" for n in range(20)]  # the billboard sends the first 20
    waiting = [{"caller": c, "display": f"…{n:02d}"} for n, c in enumerate(front)]
    await billboard.send_str(
        frame("dialjam:state", sample_state(line=front, waiting=waiting, line_length=200))
    )
    await expect(console.locator("#line li")).to_have_count(20)
    await expect(console.locator("#line li").first).to_contain_text("1st — …00")
    await expect(console.locator("#line-count")).to_have_text("(200)")
    await expect(console.locator("#line-more")).to_have_text("and 180 more")
    await billboard.send_str(frame("dialjam:state", sample_state()))
    await expect(console.locator("#line li")).to_have_count(3)
    await expect(console.locator("#line-count")).to_have_text("(3)")
    await expect(console.locator("#line-more")).to_be_hidden()
    await billboard.send_str(
        frame("dialjam:state", sample_state(line=[], waiting=[], line_length=0))
    )
    await expect(console.locator("#line-empty")).to_be_visible()
    assert console.script_errors == []  # type: ignore[attr-defined]


async def test_every_console_control_has_an_accessible_name_and_screenshots_are_saved(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    billboard = await relay.connect(headers={"Authorization": f"Bearer {BILLBOARD}"})
    for label, context in {"phone_390x844": PHONE, "desktop_1280x800": DESKTOP}.items():
        console = await open_console(browser, relay.url, **context)
        await billboard.send_str(frame("dialjam:state", sample_state()))
        await expect(console.locator("#tracks li")).to_have_count(8)
        width = await console.evaluate("document.documentElement.scrollWidth")
        assert width <= context["viewport"]["width"]  # type: ignore[index]
        # Big touch targets: every button at least 44 px each way.
        for button in await console.locator("button:visible").all():
            box = await button.bounding_box()
            assert box and box["width"] >= 44 and box["height"] >= 44, box
        await console.screenshot(path=ARTIFACTS / f"console_{label}.png", full_page=True)

    cdp = await console.context.new_cdp_session(console)
    tree = await cdp.send("Accessibility.getFullAXTree")
    roles = {"button", "textbox", "combobox", "slider", "spinbutton", "checkbox", "link"}
    controls = [
        (node["role"]["value"], node.get("name", {}).get("value", ""))
        for node in tree["nodes"]
        if node.get("role", {}).get("value") in roles and not node.get("ignored")
    ]
    assert controls and all(name.strip() for _, name in controls), controls
    names = {name for _, name in controls}
    assert {
        "Panic: all notes off",
        "Pause new callers",
        "Tempo down 4 BPM",
        "Tempo up 4 BPM",
        "Tempo slider",
        "Tempo (BPM)",
        "Key",
        "Scale",
        "Kick the drums (…12)",
        "Mute the bass (Ada)",
        "Unmute the chords (…07)",
        "Kick the 1st in line (…31)",
        "Kick the 2nd in line",
        "Undo the kick of …44: let them play again now",
    } <= names, names
    assert console.script_errors == []  # type: ignore[attr-defined]


async def test_the_console_says_when_no_billboard_listens(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()  # a relay, and no billboard subscribed to it
    console = await open_console(browser, relay.url, **DESKTOP)
    await expect(console.locator("#relay-health")).to_contain_text("no billboard is listening")
    assert await console.locator("#figures").get_attribute("data-health") == "degraded"
