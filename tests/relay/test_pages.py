"""web/ served by a real relay on a free port (relay/pages.py): gzip when the browser
takes it, a strong ETag per representation, and 304 when nothing changed."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.support.relay import RunningRelay, StartRelay

WEB = Path(__file__).resolve().parents[2] / "web"


@pytest.mark.parametrize("path", ["/keypad", "/js/keypad.js", "/css/keypad.css", "/"])
async def test_pages_are_gzipped_when_accepted_and_revalidated_with_their_etag(
    relay: RunningRelay, path: str
) -> None:
    url = f"{relay.url}{path}"
    async with relay.session.get(
        url, headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Vary"] == "Accept-Encoding"
        assert resp.headers["Cache-Control"] == "no-cache"
        packed = await resp.read()
        etag = resp.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('-gz"')  # strong, and the gzip body's own
    name = {"/keypad": "keypad.html", "/": "keypad.html"}.get(path, path.lstrip("/"))
    original = (WEB / name).read_bytes()
    assert gzip.decompress(packed) == original
    assert len(packed) < len(original) * 0.6
    # Asked again with the tag it holds: 304, no body, the same tag.
    headers = {"Accept-Encoding": "gzip", "If-None-Match": etag}
    async with relay.session.get(url, headers=headers, auto_decompress=False) as resp:
        assert resp.status == 304
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag
    # Without gzip: the plain body under another tag, and the gzip tag does not match it.
    headers = {"Accept-Encoding": "identity", "If-None-Match": etag}
    async with relay.session.get(url, headers=headers, auto_decompress=False) as resp:
        assert resp.status == 200 and "Content-Encoding" not in resp.headers
        assert await resp.read() == original
        assert resp.headers["ETag"] != etag
    headers = {"Accept-Encoding": "gzip;q=0", "If-None-Match": resp.headers["ETag"]}
    async with relay.session.get(url, headers=headers, auto_decompress=False) as resp:
        assert resp.status == 304


async def test_a_changed_page_gets_a_new_etag_at_once(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    (tmp_path / "keypad.html").write_text("<!doctype html><p>" + "first night " * 50)
    relay = await start_relay(web_dir=str(tmp_path))
    async with relay.session.get(f"{relay.url}/keypad") as resp:
        first = resp.headers["ETag"]
        assert "first night" in await resp.text()
    (tmp_path / "keypad.html").write_text("<!doctype html><p>" + "second night " * 50)
    headers = {"If-None-Match": first}
    async with relay.session.get(f"{relay.url}/keypad", headers=headers) as resp:
        assert resp.status == 200 and resp.headers["ETag"] != first
        assert "second night" in await resp.text()


async def test_nothing_outside_web_is_served(relay: RunningRelay) -> None:
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/js/" + "x" * 5000):
        async with relay.session.get(f"{relay.url}{path}") as resp:
            assert resp.status == 404, path
