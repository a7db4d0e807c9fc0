"""The ARI gateway's REST client: Asterisk's HTTP API (``/ari/…``, HTTP basic auth),
whose calls never raise for the peer's failures. The routes it uses are in Asterisk's
``rest-api/api-docs/channels.json`` and ``applications.json``."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import aiohttp
import orjson
from aiohttp import hdrs

from ..ratelimit import LogOnce
from .ari_core import basic_auth
from .common import CountError

log = logging.getLogger("relay.ari")

REST_TIMEOUT_S = 5.0


class AriRest:
    """One session of REST calls to `base` ("http://HOST:8088/ari"). `open` before the
    first call, `close` at the end. A failure is counted (``ari_rest_STATUS``,
    ``ari_rest_failed``) and logged once per kind."""

    def __init__(self, base: str, username: str, password: str, count_error: CountError) -> None:
        self.base = base
        self._auth = basic_auth(username, password)
        self._count_error = count_error
        self._logged = LogOnce()
        self.session: aiohttp.ClientSession | None = None

    def open(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=REST_TIMEOUT_S)
        self.session = aiohttp.ClientSession(
            headers={hdrs.AUTHORIZATION: self._auth}, timeout=timeout
        )
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def __call__(
        self, method: str, path: str, params: dict[str, str] | None = None, json: Any = None
    ) -> tuple[int | None, Any]:
        """One REST call: (status, JSON body or None); (None, None) when it did not get
        through. Never raises for the peer's failures: a REST call never crashes us."""
        session = self.session
        assert session is not None
        try:
            request = session.request(method, self.base + path, params=params, json=json)
            async with request as resp:
                body: Any = None
                if resp.content_type == "application/json":
                    with contextlib.suppress(ValueError):
                        body = orjson.loads(await resp.read())
                if resp.status >= 400:
                    said = body.get("message") if isinstance(body, dict) else None
                    self._count_error(f"ari_rest_{resp.status}")
                    self._logged.log(
                        log,
                        logging.WARNING if resp.status >= 500 else logging.INFO,
                        f"rest_{resp.status}",
                        "ARI %s %s: HTTP %d (%s)",
                        method,
                        path,
                        resp.status,
                        str(said)[:80] if said else "no message",
                    )
                return resp.status, body
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._count_error("ari_rest_failed")
            self._logged.log(
                log,
                logging.WARNING,
                "rest_failed",
                "ARI %s %s failed: %s",
                method,
                path,
                reason(exc),
            )
            return None, None


def reason(exc: BaseException) -> str:
    """Why a connection failed, without the URL (it may hold the api_key)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


__all__ = ["REST_TIMEOUT_S", "AriRest", "reason"]
