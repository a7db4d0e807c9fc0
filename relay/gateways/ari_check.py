"""Does the dialplan send calls to our Stasis app? Asterisk accepts any app name on the
events socket, so a wrong ``[ari] app`` looks connected while every call fails
("Stasis app 'NAME' not registered" in Asterisk's log, and the caller hears the call
drop). ARI cannot read the dialplan, but it can watch it run:

- A second events socket, for an app of our own (``NAME-check-…``) with
  ``subscribeAll=true``, hears every channel's events; ``PUT
  /ari/applications/{app}/eventFilter`` with ``{"allowed":[{"type":"ChannelDialplan"}]}``
  keeps only ``ChannelDialplan {dialplan_app, dialplan_app_data, channel}`` (sent when a
  channel starts a dialplan application: Asterisk's res/stasis/app.c,
  ``channel_dialplan``). An Asterisk without event filters sends everything; the watcher
  ignores the rest.
- A channel starting ``Stasis(X)`` with X our app proves the dialplan (so does our first
  ``StasisStart``): the watcher stops. With X another name that no client has registered
  (``GET /ari/applications``), the call failed: the watcher says so once per name, with
  both names, and ``/healthz`` shows ``app_mismatch``. A Stasis(X) of an app another
  client holds is someone else's and says nothing.

What it cannot see: a call that never reaches any ``Stasis()`` (a wrong context or
extension pattern); until a call comes, nothing is proven either way.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import WSMsgType

from ..ratelimit import LogOnce
from .ari_rest import REST_TIMEOUT_S, AriRest, reason

log = logging.getLogger("relay.ari")

FILTER = {"allowed": [{"type": "ChannelDialplan"}]}


def stasis_target(frame: str | bytes) -> str | None:
    """The app a ``ChannelDialplan`` event's channel is sent to by ``Stasis(APP,…)``,
    or None for anything else (total: a bad frame is None)."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "ChannelDialplan":
        return None
    app, data = msg.get("dialplan_app"), msg.get("dialplan_app_data")
    if not isinstance(app, str) or app.lower() != "stasis" or not isinstance(data, str):
        return None
    target = data.split(",", 1)[0].strip()
    return target[:80] or None


class AppCheck:
    """Watches the dialplan's ``Stasis()`` calls until one proves `app` (see the module
    docstring). `proven` tells it our own app has had a call (it then stops)."""

    def __init__(self, app: str, rest: AriRest, events_url: str, api_key: str) -> None:
        self.app = app
        self.rest = rest
        self.events_url = events_url
        self.api_key = api_key
        self.watch_app = f"{app}-check-{secrets.token_hex(3)}"
        self.seen_ours = False
        self.mismatch: str | None = None
        self._logged = LogOnce()

    async def watch(self, proven: Callable[[], bool]) -> None:
        """Watch until `proven()` or the socket closes (the client starts it again on
        its next connection). Never raises for Asterisk's failures."""
        session = self.rest.session
        assert session is not None
        params = {"app": self.watch_app, "subscribeAll": "true"}
        if self.api_key:
            params["api_key"] = self.api_key
        try:
            ws = await session.ws_connect(
                self.events_url,
                params=params,
                heartbeat=30.0,
                timeout=aiohttp.ClientWSTimeout(ws_close=REST_TIMEOUT_S),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("cannot watch the dialplan's Stasis() calls (%s)", reason(exc))
            return
        try:
            path = f"/applications/{quote(self.watch_app, safe='')}/eventFilter"
            await self.rest("PUT", path, json=FILTER)
            async for msg in ws:
                if proven():
                    break
                if msg.type is WSMsgType.TEXT:
                    target = stasis_target(msg.data)
                    if target is not None:
                        await self.seen(target)
                if self.seen_ours:
                    break
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("the dialplan watch ended: %s", reason(exc))
        finally:
            await ws.close()

    async def seen(self, target: str) -> None:
        """A channel starts Stasis(`target`)."""
        if target == self.app:
            self.seen_ours = True
            return
        status, body = await self.rest("GET", "/applications")
        names = _names(body) if status == 200 else None
        if names is None or target in names:
            return  # unknown, or another client's app: not ours to judge
        self.mismatch = target
        self._logged.log(
            log,
            logging.WARNING,
            target,
            "the dialplan sent a call to Stasis(%s), an app no ARI client has registered, "
            "so the call failed; this relay's [ari] app is %r: set [ari] app = %r, or make "
            "extensions.conf say Stasis(%s)",
            target,
            self.app,
            target,
            self.app,
        )


def _names(body: Any) -> set[str] | None:
    if not isinstance(body, list):
        return None
    return {a["name"] for a in body if isinstance(a, dict) and isinstance(a.get("name"), str)}


__all__ = ["AppCheck", "stasis_target"]
