"""The rehearsal crowd across two relays sharing their channels through a real
redis-server: callers play one relay through every ingress path, the arrival check
and a real billboard (`python -m billboard --relay`) listen on the other."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import AsyncIterator

import aiohttp
import orjson

from relay.config import AriConfig, TwilioConfig
from relay.rehearsal.crowd import run_crowd
from relay.rehearsal.plan import CrowdOptions
from tests.support.processes import HEADLESS_ENV, ROOT, STARTUP_S, free_port
from tests.support.redis import RedisServer
from tests.support.relay import ANSWER_S, BILLBOARD, OPERATOR, RunningRelay, StartRelay, send

PUBLIC = "https://jam.example.org"
TOKEN = "12345678901234567890123456789012"
CROWD = CrowdOptions(callers=5, rate=4.0, duration=2.0, ramp=0.5, seed=3, drain=3.0, style="steady")


@contextlib.asynccontextmanager
async def billboard_of(relay: RunningRelay) -> AsyncIterator[asyncio.subprocess.Process]:
    """A headless, silent billboard whose link goes out to `relay`, as at a venue."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "billboard", "--headless", "--no-sound",
        "--relay", relay.ws_url, "--token", BILLBOARD, "--log-level", "WARNING",
        cwd=ROOT,
        env={**os.environ, **HEADLESS_ENV},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def billboard_listening(relay: RunningRelay) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_S
    while (await relay.healthz())["billboard"]["subscribed"] == 0:
        assert asyncio.get_running_loop().time() < deadline, "the billboard never subscribed"
        await asyncio.sleep(0.1)


async def test_a_crowd_on_every_path_of_one_relay_reaches_the_other_and_its_billboard(
    start_relay: StartRelay, redis_server: RedisServer
) -> None:
    ari_port = free_port()
    ari = AriConfig(
        url=f"http://127.0.0.1:{ari_port}",
        app="venue-jam",
        username="asterisk",
        password="s3cret",
        reconnect_max_s=0.2,
    )
    street = await start_relay(
        TwilioConfig(auth_token=TOKEN), ari, backplane=redis_server.url, public_url=PUBLIC
    )
    venue = await start_relay(backplane=redis_server.url)
    # The operator's view of the billboard's news, on the street-side relay.
    console = await street.publisher(OPERATOR)
    await send(console, {"type": "subscriber", "id": "dialjam:state", "v": 2})
    assigned: set[str] = set()

    async def watch() -> None:
        async for msg in console:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return
            frame = orjson.loads(msg.data)
            for item in frame if isinstance(frame, list) else [frame]:
                data = item.get("data") or {}
                if data.get("event") == "assign" and data.get("track"):
                    assigned.add(data["caller"])

    watcher = asyncio.create_task(watch())
    async with billboard_of(venue) as board:
        try:
            await billboard_listening(venue)
            for via in ("ws", "twilio", "twilio-audio", "ari"):
                options = dataclasses.replace(
                    CROWD,
                    via=via,
                    relay=street.url,
                    check_relay=venue.url,
                    public_url=PUBLIC,
                    twilio_token=TOKEN,
                    ari_listen=("127.0.0.1", ari_port),
                    ari_wait=30.0,
                    ari_app="venue-jam",
                    ari_username="asterisk",
                    ari_password="s3cret",
                )
                report = await run_crowd(options)
                text = report.render()
                assert report.ok and "PASS" in text, f"{via}: {text}"
                assert report.presses_seen == report.presses_sent == 5 * 8, f"{via}: {text}"
                assert (report.lost, report.duplicated, report.out_of_order) == (0, 0, 0), text
            # Joins crossed to the venue's billboard, and its news crossed back.
            deadline = asyncio.get_running_loop().time() + ANSWER_S
            while len(assigned) < 8:  # its eight tracks, at least
                assert asyncio.get_running_loop().time() < deadline, sorted(assigned)
                await asyncio.sleep(0.1)
            assert board.returncode is None
        except BaseException:
            if board.stderr is not None and board.returncode is not None:
                print((await board.stderr.read()).decode()[-3000:])
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
