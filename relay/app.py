"""The relay's aiohttp application: its HTTP routes, health, metrics, web/, and
`create_app`, which puts the pieces together.

The WebSocket side (the relay's clients, the only code writing to sockets, the registry
of every open WebSocket) is relay/connections.py; what both share is relay/state.py.
Every background task is owned by the app and cancelled on the way out; on shutdown
every open WebSocket, the gateways' streams included, is closed with 1001 Going Away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from . import phone_feed, protocol, reach
from .admission import Publisher
from .config import AriConfig, RelayConfig, SipConfig, TwilioConfig, fill_tokens, pseudonym_key
from .connections import Connection, Flusher, Registry, websocket
from .fanout import FanOut, Limits
from .listener import GUARD, EdgeGuard, listen
from .metrics import make_registry
from .pages import Pages
from .phone_feed import PhoneFeed
from .protocol import ProtocolError
from .qr import KeypadCodes
from .ratelimit import BucketsByKey
from .sessions import SessionError, Sessions, derive_key
from .state import PUBLISHER_ONLY, STATE, RelayState, bearer, publisher_cost

log = logging.getLogger("relay")

METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
PAGES = web.AppKey("pages", Pages)


async def root(request: web.Request) -> web.StreamResponse:
    """The 2010 clients connect to `/`: an upgrade is the relay, a GET the keypad."""
    if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
        return await websocket(request)
    return page(request, "keypad")


def page(request: web.Request, name: str) -> web.StreamResponse:
    pages = request.app[PAGES]
    for candidate in (f"{name}.html", "index.html"):
        found = pages.find(candidate)
        if found is not None:
            return pages.respond(request, found)
    raise web.HTTPNotFound(text=f"{name} page not installed")


async def named_page(request: web.Request) -> web.StreamResponse:
    return page(request, request.match_info["page"])


async def static(request: web.Request) -> web.StreamResponse:
    """A file of web/ (relay/pages.py: gzip, ETag, revalidated every time, so a phone
    never keeps last night's keypad after an update)."""
    pages = request.app[PAGES]
    found = pages.find(request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound()
    return pages.respond(request, found)


def http_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "code": code, "message": message}, status=status)


async def http_publish(request: web.Request) -> web.Response:
    """POST /publish/{channel}: the body is the event's `data` object (or a whole
    publisher frame); returns the seq like an ack."""
    state = request.app[STATE]
    cfg = state.config
    channel = request.match_info["channel"]
    roles = state.roles_for(bearer(request))
    if bearer(request) and not roles:
        state.count_error("unauthorised")
        return http_error(401, "unauthorised", "token not recognised")
    if not protocol.valid_channel(channel):
        state.count_error("bad_id")
        return http_error(400, "bad_id", "channel must be 1–64 characters of A-Z a-z 0-9 _ . : -")
    buckets = state.http_buckets
    remote, now = request.remote or "?", time.monotonic()
    if not roles and buckets and not await state.address_allows(buckets, "http", remote, now):
        state.count_error("rate_limited")
        return http_error(429, "rate_limited", f"more than {cfg.rate:g} publishes a second")
    limit = cfg.token_max_frame if roles else cfg.max_frame
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        state.count_error("too_large")
        return http_error(413, "too_large", f"body over the {limit}-byte limit")
    publishers = state.publisher_buckets
    cost = publisher_cost(len(body))
    if (
        roles == PUBLISHER_ONLY
        and publishers
        and not await state.address_allows(publishers, "publish", remote, now, cost)
    ):
        state.count_error("rate_limited")
        return http_error(
            429, "rate_limited", f"more than {cfg.publisher_rate:g} publishes (or KiB) a second"
        )
    try:
        obj = protocol.decode_json(body)
        if not isinstance(obj, dict):
            raise ProtocolError("not_object", "the body must be a JSON object")
        if obj.get("type") == "publisher" and "data" in obj:
            obj = dict(obj, id=channel)
        else:
            obj = {"type": "publisher", "id": channel, "data": obj}
        req = protocol.parse_object(obj)
        assert isinstance(req, protocol.Publish)
        caller = None
        if req.session is not None:
            if state.sessions is None or channel not in state.public_channels:
                raise ProtocolError("bad_session", f"no caller sessions on {channel}")
            try:
                caller = state.sessions.check(req.session, channel, state.wall()).caller
            except SessionError as exc:
                raise ProtocolError(exc.code, exc.message) from None
        who = Publisher(frozenset(roles), caller, cfg.open)
        admitted = state.publish_for(channel, req.data, who)
        create = bool(roles) or cfg.open
        if state.backplane is not None:  # answered once Redis holds it
            seq, epoch = await state.publish_shared(channel, admitted, create=create)
        else:
            ch = state.publish(channel, admitted, create=create)
            seq, epoch = ch.seq, ch.epoch
    except ProtocolError as exc:
        state.count_error(exc.code)
        status = {
            "unauthorised": 401,
            "bad_session": 401,
            "session_expired": 401,
            "rate_limited": 429,
            "unknown_channel": 404,
            "too_many_channels": 503,
            "backplane_unavailable": 503,
        }.get(exc.code, 400)
        return http_error(status, exc.code, exc.message)
    return web.json_response({"type": "ack", "id": channel, "seq": seq, "epoch": epoch})


async def new_session(request: web.Request) -> web.Response:
    """POST /session: a keypad's caller session for ``channel`` (JSON body or query);
    ``{"renew": OLD}`` keeps the caller of a valid or recently expired session."""
    state = request.app[STATE]
    cfg = state.config
    sessions, buckets = state.sessions, state.session_buckets
    assert sessions is not None and buckets is not None
    if not await state.address_allows(buckets, "session", request.remote or "?", time.monotonic()):
        state.count_error("rate_limited")
        return http_error(
            429,
            "rate_limited",
            f"more than {cfg.sessions_per_minute} new sessions a minute from your address",
        )
    body = await request.content.read(1025)
    try:
        obj = protocol.decode_json(body) if body.strip() else {}
    except ProtocolError as exc:
        state.count_error(exc.code)
        return http_error(400, exc.code, exc.message)
    if not isinstance(obj, dict) or len(body) > 1024:
        state.count_error("bad_data")
        return http_error(400, "bad_data", 'the body must be a small JSON object {"channel": …}')
    channel = obj.get("channel", request.query.get("channel", cfg.channel))
    if not isinstance(channel, str) or channel not in state.public_channels:
        state.count_error("unknown_channel")
        return http_error(404, "unknown_channel", "no installation plays on that channel here")
    now = state.wall()
    try:
        if "renew" in obj:
            session = sessions.renew(obj["renew"], channel, now)
        else:
            session = sessions.mint(channel, now)
    except SessionError as exc:
        state.count_error(exc.code)
        return http_error(401, exc.code, exc.message)
    state.sessions_minted += 1
    return web.json_response(
        {
            "type": "session",
            "session": session.token,
            "caller": session.caller,
            "channel": channel,
            "expires": session.expires,
            "ttl_s": sessions.ttl_s,
        },
        headers={"Cache-Control": "no-store"},
    )


def health(state: RelayState) -> dict[str, Any]:
    hub = state.hub
    active = sum(1 for ch in hub.channels.values() if ch.subscriptions)
    billboards = state.billboards()
    shared = state.backplane.health() if state.backplane is not None else None
    if shared is not None and state.shared_buckets is not None:
        shared["address_limits"] = state.shared_buckets.health()
        if state.edge is not None and state.edge.shared is not None:
            shared["sockets_per_address"] = state.edge.shared.health()
    up = shared is None or shared["ok"]
    status = "shutting_down" if state.closing else "ok" if billboards and up else "degraded"
    return {
        "status": status,
        # "degraded" while no billboard listens: callers' keys reach nobody; or while
        # the backplane (Redis) cannot be reached: publishes are refused.
        "billboard": {"subscribed": billboards},
        **({"backplane": shared} if shared is not None else {}),
        "sessions_minted": state.sessions_minted,
        "throttled": state.throttled,
        "callers_online": sum(1 for n in state.live_callers.values() if n),
        "uptime_s": round(time.monotonic() - state.started, 3),
        "channels": active,
        "channels_held": len(hub.channels),
        "subscribers": hub.subscription_count(),
        "connections": len(state.connections),
        # Every open WebSocket by kind: the relay's clients and the gateways' streams.
        "websockets": state.sockets.counts(),
        "events_per_s": round(state.events_per_s, 2),
        "published": hub.stats.published,
        "delivered": hub.stats.delivered,
        "drops": hub.stats.drops,
        "queued": sum(hub.queued()),
        "history_bytes": hub.history_bytes,
        "history_dropped": {
            "channel_bytes": hub.stats.history_dropped_channel,
            "total_bytes": hub.stats.history_dropped_total,
        },
        "errors": dict(state.errors),
        **({"sockets": state.edge.figures(state.errors)} if state.edge else {}),
        **{name: status() for name, status in state.gateway_health.items()},
    }


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(health(request.app[STATE]))


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Once a second: expire history, free empty channels, sample events/s."""
    state = app[STATE]

    async def loop() -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                state.hub.sweep(time.monotonic())
                state.sample_rate()
            except Exception:
                log.exception("housekeeping failed")

    task = asyncio.get_running_loop().create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def shared_channels(app: web.Application) -> AsyncIterator[None]:
    """The backplane's listener and writer run as long as the app (relay/backplane.py)."""
    state = app[STATE]
    backplane = state.backplane
    assert backplane is not None
    await backplane.start()
    sockets = state.edge.shared if state.edge is not None else None
    beat = asyncio.get_running_loop().create_task(sockets.beat()) if sockets else None
    yield
    if beat is not None:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    await backplane.stop()


async def close_all(app: web.Application) -> None:
    """On shutdown every WebSocket, the gateways' streams included, is told 1001 Going
    Away; no new one is taken from now on."""
    state = app[STATE]
    state.closing = True
    await state.sockets.close_all(protocol.CLOSE_GOING_AWAY, "relay shutting down")


def create_app(
    config: RelayConfig,
    twilio: TwilioConfig | None = None,
    ari: AriConfig | None = None,
    sip: SipConfig | None = None,
) -> web.Application:
    """The relay as an aiohttp application (embeddable: the billboard runs it too);
    with `twilio`, the Twilio gateway's webhook and stream are mounted too; with `ari`,
    an Asterisk ARI client runs with the app; with `sip`, a SIP listener answers a
    carrier's trunk."""
    config, made_up = fill_tokens(config)
    if made_up:
        log.info("made up for this relay only: %s (relay.config.fill_tokens)", ", ".join(made_up))
    # The installation's channels (and the gateways', when elsewhere) always exist.
    pinned = protocol.installation_channels(config.channel).union(
        *(protocol.installation_channels(t.channel_for(config)) for t in (twilio, ari, sip) if t)
    )
    hub = FanOut(
        Limits(
            queue=config.queue,
            history_events=config.history_events,
            history_seconds=config.history_seconds,
            slow_close_s=config.slow_close_s,
            max_channels=config.max_channels,
            history_bytes=config.history_bytes,
            history_total_bytes=config.history_total_bytes,
        ),
        pinned=pinned,
    )
    flusher = Flusher(hub)
    hub.wake = flusher.wake
    state = RelayState(config=config, hub=hub, sockets=Registry(), flusher=flusher)
    if config.rate > 0:
        state.http_buckets = BucketsByKey(config.rate, config.burst)
    if config.publisher_rate > 0:
        state.publisher_buckets = BucketsByKey(config.publisher_rate, config.publisher_burst)
    secret = config.session_key or config.operator_token
    state.sessions = Sessions(derive_key(secret, "caller sessions"), config.session_ttl_s)
    state.pseudonym_key = pseudonym_key(config)
    per_minute = config.sessions_per_minute
    state.session_buckets = BucketsByKey(per_minute / 60.0, per_minute)
    state.caller_buckets = BucketsByKey(config.caller_rate, 2 * config.caller_rate)
    state.public_channels = frozenset(
        {config.channel}
        | {gateway.channel_for(config) for gateway in (twilio, ari, sip) if gateway is not None}
    )
    state.edge = EdgeGuard(config, state.count_error)
    app = web.Application(
        client_max_size=config.token_max_frame + 1024, middlewares=[state.edge.middleware]
    )
    app[STATE] = state
    app[GUARD] = state.edge
    app.on_response_prepare.append(state.edge.add_headers)
    app[METRICS_REGISTRY] = make_registry(state)
    app[PAGES] = Pages(Path(config.web_dir))
    app.cleanup_ctx.append(housekeeping)
    if config.backplane:
        from .backplane import RedisBackplane  # only a relay that shares channels loads it
        from .sharedlimits import SharedBuckets, SharedSockets

        state.backplane = RedisBackplane(config.backplane, hub, config.caller_rate)
        address_key = derive_key(config.pseudonym_key, "address limits")
        state.shared_buckets = SharedBuckets(state.backplane.redis, address_key)
        if config.connections_per_address:
            sockets = SharedSockets(
                state.backplane.redis,
                address_key,
                state.backplane.node,
                config.connections_per_address,
            )
            state.edge.shared = sockets
            state.edge.ledger.on_release = sockets.released
        app.cleanup_ctx.append(shared_channels)
    app.on_shutdown.append(close_all)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/", root)
    app.router.add_post("/publish/{channel}", http_publish)
    app.router.add_post("/session", new_session)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/qr.svg", KeypadCodes().respond)  # the wall mirror's QR code
    reach.mount(app, reach.reach_key(config.billboard_token))  # "is the public address us?"
    if config.phone_music:  # the billboard's phone mixes in, paced out to the calls
        phone = state.phone = PhoneFeed(
            lambda token: "billboard" in state.roles_for(token), config.phone_jitter_ms // 20
        )
        phone_feed.mount(app, phone)
        state.gateway_health["phone"] = phone.health

        async def close_phone(_app: web.Application) -> None:
            await phone.close()

        app.on_shutdown.append(close_phone)
        if config.backplane:  # the calls on every relay hear it
            from .phone_share import PhoneShare

            share = PhoneShare(config.backplane, config.channel, phone)
            phone.offer, phone.extra_health = share.offer, share.health

            async def sharing(_app: web.Application) -> AsyncIterator[None]:
                await share.start()
                yield
                await share.stop()

            app.cleanup_ctx.append(sharing)
    # The telephony gateways, before the catch-all GET of web/.
    if twilio is not None:
        from .gateways.twilio import TwilioGateway  # only a relay that has it loads it

        TwilioGateway(twilio, config, state.publish, state.count_error, phone=state.phone).mount(
            app
        )
    if ari is not None:
        from .gateways.ari import AriGateway

        gateway = AriGateway(ari, config, state.publish, state.count_error, phone=state.phone)
        gateway.mount(app)
        state.gateway_health["ari"] = gateway.health
    if sip is not None:
        from .gateways.sip.gateway import SipGateway

        sip_gateway = SipGateway(sip, config, state.publish, state.count_error, phone=state.phone)
        sip_gateway.mount(app)
        state.gateway_health["sip"] = sip_gateway.health
    app.router.add_get("/{page:keypad|console|wall}", named_page)
    app.router.add_get("/{path:.+}", static)
    return app


__all__ = ["STATE", "Connection", "RelayState", "create_app", "health", "listen"]
