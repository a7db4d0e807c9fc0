"""The baseline for bench/relay_load.py: the per-message aiohttp relay people write.

It speaks the seed (2010) protocol at ``/ws`` and nothing more::

    {"type":"subscriber","id":CH}              subscribe to CH
    {"type":"publisher","id":CH,"data":{...}}  send data to every subscriber of CH

For every publish it does ``for ws in subscribers: await ws.send_str(json.dumps(data))``,
so one slow socket stalls the publisher and everyone after it, each subscriber costs a
JSON encode and a write, and nothing is ever coalesced. ``"v":2`` is ignored: everyone
gets the raw ``data`` object, one frame per event. It runs on asyncio's own event loop
with the stdlib json module, as people write it; ``--uvloop --orjson`` gives it the
loop and JSON library dialjam runs on, so a comparison can be like for like.

    python bench/naive_relay.py --port 8090 [--host 127.0.0.1] [--uvloop] [--orjson]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

CHANNELS = web.AppKey("channels", dict[str, set[web.WebSocketResponse]])
LOADS: web.AppKey[Callable[[str], Any]] = web.AppKey("loads")
DUMPS: web.AppKey[Callable[[Any], str]] = web.AppKey("dumps")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    channels = request.app[CHANNELS]
    loads, dumps = request.app[LOADS], request.app[DUMPS]
    mine: set[str] = set()
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                frame = loads(msg.data)
                kind = frame.get("type")
                channel = frame.get("id")
            except (ValueError, AttributeError):
                continue
            if kind == "subscriber":
                channels.setdefault(channel, set()).add(ws)
                mine.add(channel)
            elif kind == "publisher":
                data = frame.get("data")
                for sub in list(channels.get(channel, ())):
                    try:
                        await sub.send_str(dumps(data))
                    except ConnectionError:
                        channels[channel].discard(sub)
    finally:
        for channel in mine:
            channels[channel].discard(ws)
    return ws


def create_app(use_orjson: bool = False) -> web.Application:
    app = web.Application()
    app[CHANNELS] = {}
    app[LOADS], app[DUMPS] = json.loads, json.dumps
    if use_orjson:
        import orjson

        app[LOADS] = orjson.loads
        app[DUMPS] = lambda obj: orjson.dumps(obj).decode()
    app.router.add_get("/ws", websocket)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description="naive per-message aiohttp relay (bench baseline)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    p.add_argument("--orjson", action="store_true", help="read and write JSON with orjson")
    args = p.parse_args()
    loop_factory = None
    if args.uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    web.run_app(
        create_app(args.orjson),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        loop=loop,
    )


if __name__ == "__main__":
    main()
