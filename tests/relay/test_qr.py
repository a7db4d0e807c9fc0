"""``/qr.svg`` on a real relay (relay/qr.py): the QR code of a keypad's address for the
wall mirror, cached and revalidated, and never of any other text. That the image
decodes is shown in a real browser (tests/web/test_wall_banner.py)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from relay.qr import is_keypad_address
from tests.support.relay import RunningRelay

KEYPAD = "https://jam.example.org/keypad?channel=dialjam"


async def test_a_keypads_qr_code_is_an_svg_cached_for_a_day_and_revalidated(
    relay: RunningRelay,
) -> None:
    url = f"{relay.url}/qr.svg?url={quote(KEYPAD, safe='')}"
    async with relay.session.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "image/svg+xml"
        assert resp.headers["Cache-Control"] == "public, max-age=86400"
        body = await resp.text()
        etag = resp.headers["ETag"]
    assert body.lstrip().startswith("<?xml") or body.lstrip().startswith("<svg")
    assert "<path" in body and "QR code" in body
    async with relay.session.get(url, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304 and await resp.read() == b""


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "https://evil.example/login",
        "javascript:alert(1)//keypad",
        "https:///keypad",
        "https://jam.example.org/keypad " + "x" * 10,
        "https://jam.example.org/" + "k" * 600 + "/keypad",
    ],
)
async def test_no_qr_code_is_drawn_for_anything_but_a_keypads_address(
    relay: RunningRelay, text: str
) -> None:
    assert not is_keypad_address(text)
    async with relay.session.get(f"{relay.url}/qr.svg", params={"url": text}) as resp:
        assert resp.status == 404


class Asking:
    """What the handler reads of a request: its query and headers."""

    def __init__(self, url: str) -> None:
        self.query = {"url": url}
        self.headers: dict[str, str] = {}


async def test_new_codes_are_drawn_at_most_twice_a_second_and_drawn_ones_stay_served() -> None:
    from typing import cast

    from aiohttp import web

    from relay.qr import KeypadCodes

    now = [100.0]
    codes = KeypadCodes(clock=lambda: now[0])

    def asking(url: str) -> web.Request:
        return cast(web.Request, Asking(url))

    assert (await codes.respond(asking(KEYPAD))).status == 200
    with pytest.raises(web.HTTPServiceUnavailable) as refused:  # a stranger's flood of new ones
        await codes.respond(asking(KEYPAD + "x"))
    assert refused.value.headers["Retry-After"] == "1"
    assert (await codes.respond(asking(KEYPAD))).status == 200  # the wall's own: kept
    now[0] += 0.5
    assert (await codes.respond(asking(KEYPAD + "x"))).status == 200


def test_an_address_longer_than_a_keypads_could_be_is_not_drawn() -> None:
    assert is_keypad_address("https://jam.example.org/" + "k" * 280 + "/keypad")
    assert not is_keypad_address("https://jam.example.org/" + "k" * 300 + "/keypad")
