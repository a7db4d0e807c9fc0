"""The pages under the relay's Content-Security-Policy, in a real headless Chromium:
each loads its scripts and styles, opens its socket, and the browser reports no
violation; a page of another origin can neither frame them nor open their socket."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from tests.support.processes import free_port
from tests.support.relay import OPERATOR, StartRelay
from tests.web.pages import PHONE, TEST_BUDGET_S, new_context, wait_online

pytestmark = pytest.mark.timeout(TEST_BUDGET_S)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

# Every violation the page meets, collected before any of its scripts runs.
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


async def open_page(browser: Browser, url: str, checked: bool = True) -> tuple[Page, list[str]]:
    ctx = await new_context(browser, **PHONE)
    await ctx.add_init_script(WATCH_CSP)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    response = await page.goto(url)
    assert response is not None and response.ok, url
    if checked:  # one of the relay's
        csp = (await response.all_headers())["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
    return page, errors


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/keypad?channel=dialjam", "#link[data-state='online']"),
        (f"/console?channel=dialjam#token={OPERATOR}", "#link[data-state='online']"),
        ("/wall?channel=dialjam", "#status"),
        ("/", "#link[data-state='online']"),  # seed visitors get the keypad
        ("/index.html", "h1"),
    ],
)
async def test_every_page_works_under_the_content_security_policy(
    start_relay: StartRelay, browser: Browser, path: str, ready: str
) -> None:
    relay = await start_relay()
    page, errors = await open_page(browser, relay.url + path)
    await page.wait_for_selector(ready)
    # Its style sheet applied (a blocked one leaves the browser's white background).
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"), path
    if "keypad" in path or path == "/":
        await wait_online(page)  # its WebSocket passed connect-src and the Origin check
    assert await page.evaluate("window.cspViolations") == []
    assert errors == []


async def test_a_page_elsewhere_can_neither_frame_the_keypad_nor_open_its_socket(
    start_relay: StartRelay, browser: Browser
) -> None:
    relay = await start_relay()
    # Another site (a plain aiohttp app on another port: another origin to the browser).
    elsewhere = web.Application()

    async def home(_: web.Request) -> web.Response:
        return web.Response(text="<title>elsewhere</title>", content_type="text/html")

    elsewhere.router.add_get("/", home)
    runner = web.AppRunner(elsewhere)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        page, errors = await open_page(browser, f"http://127.0.0.1:{port}/", checked=False)
        await page.evaluate(
            """(url) => new Promise((done) => {
                 const f = document.createElement("iframe");
                 f.onload = () => done();
                 f.src = url;
                 document.body.append(f);
               })""",
            f"{relay.url}/keypad",
        )
        assert any("frame-ancestors" in error for error in errors), errors
        opened = await page.evaluate(
            """(url) => new Promise((done) => {
                 const ws = new WebSocket(url);
                 ws.onopen = () => done("open");
                 ws.onerror = () => done("refused");
               })""",
            relay.ws_url,
        )
        assert opened == "refused"
        assert relay.state.errors.get("bad_origin") == 1
    finally:
        await runner.cleanup()
