"""``GET /qr.svg?url=KEYPAD``: the QR code of a keypad's address, as an SVG image, for
the wall mirror to show beside the number (web/js/wall.js takes the address from the
billboard's ``state`` banner, the one its own screen shows).

Only a keypad's address is drawn (http or https, a path ending in ``/keypad``): the
relay does not become a QR code service for any text. The image is a pure function of
the address, so it is cached for a day and revalidated by its ETag; the last few are
kept in memory, since one wall asks for the same one again and again.

Drawing is pure Python on the relay's event loop (a long address takes segno tens of
milliseconds), so a stranger asking for ever new addresses could stall the fan-out:
addresses are at most `LONGEST` characters (a keypad's is far shorter), and at most
`DRAWS_PER_S` new codes are drawn a second, relay-wide; past that the answer is 503
with Retry-After, while codes already drawn are served as before.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import segno
from aiohttp import hdrs, web

from .contract.scene import is_web_address
from .pages import matches

CACHE_CONTROL: Final = "public, max-age=86400"
KEPT: Final = 8
LONGEST: Final = 320  # characters of an address drawn
DRAWS_PER_S: Final = 2.0  # new codes drawn a second, relay-wide


def is_keypad_address(url: str) -> bool:
    """An http(s) address (relay/contract/scene.py) whose path is a keypad's."""
    if len(url) > LONGEST or not is_web_address(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.netloc) and parts.path.rstrip("/").endswith("/keypad")


def qr_svg(url: str) -> bytes:
    """The QR code of `url` (error correction M, as the billboard's screen draws it:
    billboard/display/background.py) as a black-on-white SVG with a quiet zone of 4."""
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=1, border=4, dark="#000", light="#fff", title="QR code")
    return out.getvalue()


class KeypadCodes:
    """The route's handler (`respond`), keeping the last `KEPT` images it drew."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._kept: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._clock = clock
        self._next_draw = float("-inf")  # when a new code may be drawn again

    async def respond(self, request: web.Request) -> web.Response:
        url = request.query.get("url", "")
        if not is_keypad_address(url):
            raise web.HTTPNotFound(text="a QR code is drawn only for a keypad's address")
        kept = self._kept.get(url)
        if kept is None:
            now = self._clock()
            if now < self._next_draw:
                raise web.HTTPServiceUnavailable(
                    text="drawing other QR codes: try again in a second",
                    headers={hdrs.RETRY_AFTER: "1"},
                )
            self._next_draw = now + 1.0 / DRAWS_PER_S
            body = qr_svg(url)
            kept = self._kept[url] = (body, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
            if len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        body, etag = kept
        headers = {hdrs.CACHE_CONTROL: CACHE_CONTROL, hdrs.ETAG: etag}
        if matches(request.headers.get(hdrs.IF_NONE_MATCH, ""), etag):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers, content_type="image/svg+xml")
