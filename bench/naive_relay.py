"""The baseline for bench/relay_load.py: the per-message aiohttp relay people write.

It speaks the seed (2010) protocol at ``/ws`` and nothing more::

    {"type":"subscriber","id":CH}              subscribe to CH
    {"type":"publisher","id":CH,"data":{...}}  send data to every subscriber of CH

For every publish it does ``for ws in subscribers: await ws.send_str(json.dumps(data))``,
so one slow socket stalls the publisher and everyone after it, each subscriber costs a
JSON encode and a write, and nothing is ever coalesced. ``"v":2`` is ignored: everyone
gets the raw ``data`` object, one frame per event. It runs on asyncio's own event loop
unless ``--uvloop`` is given.

    python bench/naive_relay.py --port 8090 [--host 127.0.0.1] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import WSMsgType, web

CHANNELS = web.AppKey("channels", dict[str, set[web.WebSocketResponse]])


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    channels = request.app[CHANNELS]
    mine: set[str] = set()
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
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
                        await sub.send_str(json.dumps(data))
                    except ConnectionError:
                        channels[channel].discard(sub)
    finally:
        for channel in mine:
            channels[channel].discard(ws)
    return ws


def create_app() -> web.Application:
    app = web.Application()
    app[CHANNELS] = {}
    app.router.add_get("/ws", websocket)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description="naive per-message aiohttp relay (bench baseline)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    args = p.parse_args()
    loop_factory = None
    if args.uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    web.run_app(
        create_app(), host=args.host, port=args.port, print=None, access_log=None, loop=loop
    )


if __name__ == "__main__":
    main()
