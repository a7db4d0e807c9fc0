"""Several `python -m relay --backplane` processes on free ports of 127.0.0.1, all on
one redis-server of tests.support.redis, with the test tokens of tests.support.relay."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from tests.support.processes import free_port, start_process, wait_for_line
from tests.support.redis import RedisServer
from tests.support.relay import BILLBOARD, OPERATOR, PUBLISHER

ENV = {
    "DIALJAM_OPERATOR_TOKEN": OPERATOR,
    "DIALJAM_BILLBOARD_TOKEN": BILLBOARD,
    "DIALJAM_PUBLISHER_TOKEN": PUBLISHER,
    "DIALJAM_CALLER_RATE": "100000",  # one test caller presses far faster than a person
}


class Relays:
    """The relays of one test; `env` (DIALJAM_* settings) is added to `ENV`."""

    def __init__(self, redis: RedisServer, env: dict[str, str] | None = None) -> None:
        self.redis = redis
        self.env = {**ENV, **(env or {})}
        self.procs: list[asyncio.subprocess.Process] = []
        self.ports: list[int] = []

    async def start(self, n: int) -> None:
        for _ in range(n):
            port = free_port()
            proc = await start_process(
                "--host", "127.0.0.1", "--port", str(port), "--backplane", self.redis.url,
                env=self.env,
            )  # fmt: skip
            self.procs.append(proc)
            self.ports.append(port)
        for proc in self.procs:
            await wait_for_line(proc, "health:")

    def url(self, i: int) -> str:
        return f"ws://127.0.0.1:{self.ports[i]}/ws"

    def http(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    async def kill(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGKILL)
        await self.procs[i].wait()

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
