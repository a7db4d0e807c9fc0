"""web/ as the relay serves it: compressed, cacheable, revalidated.

A phone on festival Wi-Fi loads the keypad once and comes back to it often (a reload,
the QR code scanned again), so every file is served

- gzip-compressed when the browser accepts it (`Accept-Encoding`, RFC 9110 §12.5.3)
  and the file is text (HTML, JS, CSS, JSON, SVG) that compression makes smaller;
- with a strong `ETag` per representation (RFC 9110 §8.8.3: the gzip body has its own,
  ``"<hash>-gz"``) and ``Vary: Accept-Encoding``;
- with ``Cache-Control: no-cache``: a browser keeps the file but asks each time whether
  it is still current, and an unchanged file costs a ``304 Not Modified`` without a
  body (RFC 9110 §13.1.2, `If-None-Match`). A keypad updated between two nights is
  never stale, and a reload costs a few hundred bytes.

Files are read and compressed once and kept in memory while their size and
modification time stay the same (web/ is small: a few dozen kilobytes), so editing a
page on a running relay is served at once. aiohttp's `FileResponse` would do the
ETag and a precompressed ``.gz`` sibling, but needs a build step to make the siblings
and keeps the two in step only by hand; compressing here needs neither.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import hdrs, web

CACHE_CONTROL: Final = "no-cache"
COMPRESSIBLE: Final = frozenset(
    {"text/html", "text/javascript", "text/css", "application/json", "image/svg+xml"}
)
TYPES: Final = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}
FILES_KEPT: Final = 256  # web/ holds a few dozen; a crowd of names cannot grow this
GZIP_LEVEL: Final = 9  # compressed once per file change, so the smallest body wins


@dataclass(frozen=True, slots=True)
class Page:
    """One file of web/ ready to serve: its body, gzip body (None when compressing
    does not pay) and their ETags."""

    stamp: tuple[int, int]  # (size, mtime_ns) when read
    content_type: str
    body: bytes
    etag: str
    gz: bytes | None
    gz_etag: str


def _content_type(path: Path) -> str:
    kind = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    return kind or "application/octet-stream"


def read_page(path: Path, stamp: tuple[int, int]) -> Page:
    body = path.read_bytes()
    kind = _content_type(path)
    tag = hashlib.sha256(body).hexdigest()[:20]
    gz = None
    if kind in COMPRESSIBLE:
        # mtime=0: the same file always gives the same bytes (and so the same ETag).
        packed = gzip.compress(body, GZIP_LEVEL, mtime=0)
        gz = packed if len(packed) < len(body) else None
    return Page(stamp, kind, body, f'"{tag}"', gz, f'"{tag}-gz"')


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an `Accept-Encoding` value takes gzip (named or by ``*``, q > 0)."""
    for item in accept_encoding.lower().split(","):
        name, _, params = item.strip().partition(";")
        if name.strip() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().removeprefix("q=")
        try:
            return not params.strip() or float(q) > 0
        except ValueError:
            return False
    return False


def matches(if_none_match: str, etag: str) -> bool:
    """`If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2) or is ``*``."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


class Pages:
    """The files of one web/ folder, served as the module's docstring says."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._kept: dict[Path, Page] = {}

    def find(self, rel: str) -> Path | None:
        """The file `rel` names inside web/ (a folder's index.html), or None: never a
        path outside web/, never an error for a strange URL."""
        try:
            target = (self.root / rel).resolve()
            target.relative_to(self.root)
            if target.is_dir():
                target = target / "index.html"
            return target if target.is_file() else None
        except (ValueError, OSError):  # OSError: ENAMETOOLONG for a long URL, never a 500
            return None

    def page(self, path: Path) -> Page:
        info = path.stat()
        stamp = (info.st_size, info.st_mtime_ns)
        kept = self._kept.get(path)
        if kept is None or kept.stamp != stamp:
            if len(self._kept) >= FILES_KEPT:
                self._kept.clear()
            kept = self._kept[path] = read_page(path, stamp)
        return kept

    def respond(self, request: web.Request, path: Path) -> web.Response:
        """`path` (a file `find` gave) for `request`: gzip when accepted, 304 when the
        browser already holds this representation."""
        page = self.page(path)
        headers = {hdrs.CACHE_CONTROL: CACHE_CONTROL}
        body, etag = page.body, page.etag
        if page.gz is not None:
            headers[hdrs.VARY] = hdrs.ACCEPT_ENCODING
            if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
                body, etag = page.gz, page.gz_etag
                headers[hdrs.CONTENT_ENCODING] = "gzip"
        headers[hdrs.ETAG] = etag
        if matches(request.headers.get(hdrs.IF_NONE_MATCH, ""), etag):
            headers.pop(hdrs.CONTENT_ENCODING, None)
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if page.content_type.startswith("text/") else None
        return web.Response(
            body=body, headers=headers, content_type=page.content_type, charset=charset
        )
