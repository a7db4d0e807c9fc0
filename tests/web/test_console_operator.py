"""An operator who always knows, in a real headless Chromium: what each caller is doing
(presses a minute, the last press, the turn's end), a Kick that asks first and can be
undone while its ban runs (the keypad told at once), the relay's
and the billboard's liveness said truthfully, a small live view of the facade, and no
violation axe-core can find."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest

from tests.support.processes import free_port
from tests.support.relay import BILLBOARD, PUBLISHER
from tests.web.pages import (
    DESKTOP,
    PHONE,
    TEST_BUDGET_S,
    Billboard,
    RelayOnPort,
    axe_source,
    caller_of,
    frame,
    open_console,
    open_keypad,
    sample_state,
    state_where,
    subscribe,
    track_named,
    violations,
)

pytestmark = pytest.mark.timeout(TEST_BUDGET_S)

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails (CI=true) or skips, saying what to install
    expect = None

if TYPE_CHECKING:
    from playwright.async_api import Browser

# The mean colour of the middle of window (floor, bay) on the console's small facade.
CELL_RGB = """([floor, bay]) => {
  const c = document.getElementById('facade');
  const [floors, bays] = [7, 8];
  const cw = c.width / bays, ch = c.height / floors;
  const x = Math.round((bay + 0.4) * cw), y = Math.round((floor + 0.4) * ch);
  const d = c.getContext('2d').getImageData(x, y, Math.max(1, Math.round(cw * 0.2)),
    Math.max(1, Math.round(ch * 0.2))).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
  return sum.map((v) => Math.round(v / (d.length / 4)));
}"""


def near(rgb: list[int], color: str, tolerance: int = 40) -> bool:
    want = (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, want, strict=True))


async def test_the_console_shows_what_each_caller_does_and_a_kick_asks_before_it_frees_the_track(
    billboard: Billboard, browser: Browser
) -> None:
    async with aiohttp.ClientSession() as session:
        watcher = await subscribe(session, billboard.ws_url, "dialjam:state")
        phone = await session.ws_connect(billboard.ws_url + "?token=" + PUBLISHER)
        number = "4155550188"
        await phone.send_str(frame("dialjam", {"event": "join", "caller": number}))
        for digit in "123":
            press = {"event": "digit", "caller": number, "digit": digit}
            await phone.send_str(frame("dialjam", press))

        def ours(s: dict[str, Any]) -> dict[str, Any] | None:
            return next((t for t in s["tracks"] if t["display"] == "…88"), None)

        played = await state_where(watcher, lambda s: (ours(s) or {}).get("presses_min") == 3)
        track = ours(played)
        assert track is not None and track["last_press_s"] is not None
        console = await open_console(browser, billboard.url, **DESKTOP)
        row = console.locator(f'#tracks li[data-caller="{track["caller"]}"]')
        await expect(row.locator(".activity")).to_contain_text("3 presses/min")
        await expect(row.locator(".activity")).to_contain_text(re.compile(r"last press \d+ s ago"))
        assert number not in await console.content()

        # The first press only arms the Kick: the caller keeps the track.
        kick = console.get_by_role("button", name=re.compile(f"^Kick the {track['name']}\\b"))
        await kick.click()
        confirm = console.get_by_role(
            "button", name=re.compile(f"^Confirm: kick the {track['name']}\\b")
        )
        await expect(confirm).to_have_text("Confirm kick")
        await expect(console.locator("#message")).to_contain_text("within 3 s")
        # Left alone, it disarms; nothing was sent, the caller still plays.
        await expect(kick).to_have_text("Kick", timeout=10_000)
        still = await state_where(watcher, lambda s: True)
        assert track_named(still, track["name"])["caller"] == track["caller"]
        # Pressed twice: kicked, and the track is free.
        await kick.click()
        await confirm.click()
        await state_where(watcher, lambda s: track_named(s, track["name"])["caller"] is None)
        await expect(
            console.locator(f'#tracks li:has(b:text-is("{track["name"]}"))')
        ).to_have_attribute("data-free", "true")
        assert console.script_errors == []  # type: ignore[attr-defined]


async def test_a_kick_can_be_undone_from_the_console_and_the_keypad_may_play_at_once(
    billboard: Billboard, browser: Browser
) -> None:
    async with aiohttp.ClientSession() as session:
        watcher = await subscribe(session, billboard.ws_url, "dialjam:state")
        keypad = await open_keypad(browser, billboard.url, **PHONE)
        caller = await caller_of(keypad)
        said = keypad.locator("#said-main")
        await keypad.keyboard.press("5")  # the first key takes a track
        await expect(said).to_have_text(re.compile(r"^You are the "))
        track = await keypad.locator("#said").get_attribute("data-track")
        console = await open_console(browser, billboard.url, **DESKTOP)
        await console.get_by_role("button", name=re.compile(f"^Kick the {track}\\b")).click()
        await console.get_by_role(
            "button", name=re.compile(f"^Confirm: kick the {track}\\b")
        ).click()
        await expect(said).to_have_text("The operator took your turn")

        # The console lists the ban beside its Undo, with the time it still runs.
        kicked = console.locator(f'#kicked li[data-caller="{caller}"]')
        await expect(kicked).to_contain_text(re.compile(r"may play again in (2 min|1[0-9]{2} s)"))
        banned = await state_where(watcher, lambda s: caller in [b["caller"] for b in s["banned"]])
        assert 100 <= next(b for b in banned["banned"] if b["caller"] == caller)["ban_s"] <= 120
        await keypad.keyboard.press("1")  # refused on the phone itself, and said so
        await expect(said).to_have_text(re.compile(r"^Not yet — wait \d:\d\d$"))

        await kicked.get_by_role("button", name=re.compile(r"^Undo the kick of ")).click()
        await expect(console.locator("#message")).to_contain_text("Sent: undo the kick")
        await state_where(watcher, lambda s: caller not in [b["caller"] for b in s["banned"]])
        await expect(kicked).to_have_count(0)
        # The phone hears it at once, and its next key plays again.
        await expect(said).to_have_text("You may play again")
        await expect(keypad.locator("#said")).to_have_attribute("data-state", "lifted")
        await keypad.keyboard.press("5")
        await expect(said).to_have_text(re.compile(r"^You are the "))
        assert console.script_errors == []  # type: ignore[attr-defined]


async def test_the_console_says_the_relay_is_offline_never_live_and_draws_the_facade(
    browser: Browser,
) -> None:
    relay = RelayOnPort(free_port())
    await relay.start()
    url = f"http://127.0.0.1:{relay.port}"
    try:
        async with aiohttp.ClientSession() as session:
            stand_in = await session.ws_connect(
                f"ws://127.0.0.1:{relay.port}/ws",
                headers={"Authorization": f"Bearer {BILLBOARD}"},
            )
            console = await open_console(browser, url, **DESKTOP)
            tracks = sample_state()["tracks"]
            tracks[0] |= {"presses_min": 42, "last_press_s": 3, "turn_left_s": 95}
            tracks[1] |= {"presses_min": 0, "last_press_s": 40, "turn_left_s": 12}
            heard = console.locator("#heard")

            async def speak() -> None:  # as a billboard does, more than once a second
                while True:
                    await stand_in.send_str(frame("dialjam:state", sample_state(tracks=tracks)))
                    await asyncio.sleep(0.3)

            speaking = asyncio.create_task(speak())
            await expect(heard).to_have_text("Billboard: live")
            drums = console.locator('#tracks li[data-caller="c-0000000000"] .activity')
            await expect(drums).to_contain_text("42 presses/min · last press")
            await expect(drums).to_contain_text("left in turn")
            bass = console.locator('#tracks li[data-caller="c-0000000001"]')
            await expect(bass).to_have_attribute("data-quiet", "true")
            # The small facade: the sample's lit windows in their tracks' colours.
            for floor, bay, color, _ in sample_state()["lit"][:3]:
                rgb = await console.evaluate(CELL_RGB, [floor, bay])
                assert near(rgb, color), (floor, bay, rgb, color)
            unlit = await console.evaluate(CELL_RGB, [0, 0])
            assert max(unlit) < 60, unlit
            await expect(console.locator("#facade")).to_have_attribute(
                "aria-label", "The facade: 8 of 56 windows lit"
            )
            assert await violations(console, axe_source()) == []

            speaking.cancel()
            # The billboard falls silent: "silent", never "live" from the last state.
            await expect(heard).to_have_text(re.compile(r"^Billboard: silent for \d+ s$"))
            await expect(console.locator("#facade")).to_have_attribute(
                "aria-label", "The facade: not live"
            )
            await console.evaluate(WATCH_HEARD)
            # The relay goes away: the header says so, and the billboard is unknown.
            await relay.stop()
            await expect(console.locator("#link")).to_have_text(re.compile(r"^Relay: offline"))
            await expect(heard).to_have_text("Billboard: unknown — the relay is offline")
            # Back: no "live" until the billboard speaks again.
            await relay.start()
            await expect(console.locator("#link")).to_have_text("Relay: connected")
            await expect(heard).to_have_text("Waiting for the billboard…")
            assert "Billboard: live" not in await console.evaluate("window.heardSaid")
    finally:
        await relay.stop()


# Every text #heard shows from now on, kept in window.heardSaid.
WATCH_HEARD = """() => {
  window.heardSaid = [];
  const el = document.getElementById('heard');
  new MutationObserver(() => window.heardSaid.push(el.textContent))
    .observe(el, { childList: true, characterData: true, subtree: true });
  return window.heardSaid;
}"""


async def test_end_all_calls_asks_first_then_sends_end_calls_and_keypads_play_on(
    billboard: Billboard, browser: Browser
) -> None:
    async with aiohttp.ClientSession() as session:
        control = await subscribe(session, billboard.ws_url, "dialjam:control")
        keypad = await open_keypad(browser, billboard.url, **PHONE)
        caller = await caller_of(keypad)
        await keypad.keyboard.press("5")
        await expect(keypad.locator("#said-main")).to_have_text(re.compile(r"^You are the "))
        console = await open_console(browser, billboard.url, **DESKTOP)
        end = console.locator("#end-calls")
        # The first press only arms it; left alone, it disarms and nothing was sent.
        await end.click()
        await expect(end).to_have_text("Confirm: end all calls")
        await expect(end).to_have_attribute("data-armed", "true")
        await expect(console.locator("#message")).to_contain_text("within 3 s")
        await expect(end).to_have_text("End all calls", timeout=10_000)
        # Pressed twice: the command goes out on NAME:control, and the console says so.
        await end.click()
        await end.click()
        await expect(console.locator("#message")).to_contain_text("All phone calls ended")
        msg = await control.receive(timeout=10)
        assert orjson.loads(msg.data) == {"event": "command", "name": "end_calls", "args": {}}
        # The billboard took it and goes on; the keypad (no phone call) keeps its track.
        after = await subscribe(session, billboard.ws_url, "dialjam:state")
        later = await state_where(after, lambda s: True)
        assert caller in [t["caller"] for t in later["tracks"]]
        await expect(keypad.locator("#said-main")).to_have_text(re.compile(r"^You are the "))
        assert console.script_errors == []  # type: ignore[attr-defined]
