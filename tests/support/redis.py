"""A real redis-server for the backplane's tests: on a free port of 127.0.0.1 (never
Redis's own 6379), its files in a temporary directory, no snapshots; with
``durable``, an append-only file synced on every write, so a kill -9 loses nothing
Redis acknowledged. It can be killed and started again on the same port."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.processes import free_port

# How long redis-server may take to answer PING: milliseconds when idle.
START_S = 20.0


class RedisServer:
    def __init__(self, binary: str, workdir: Path, durable: bool = False) -> None:
        self.binary = binary
        self.workdir = workdir
        self.durable = durable
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["yes", "--appendfsync", "always"] if self.durable else ["no"]
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(self.workdir), "--protected-mode", "no", "--appendonly", *persistence,
        ]  # fmt: skip
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 (the process keeps it)
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_S
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start: {self.log()[-2000:]}")
            time.sleep(0.02)

    def answers(self) -> bool:
        """Whether it answers PING (spoken in RESP over a plain socket)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye, nothing saved beyond what is on disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "redis.log").read_text(errors="replace")
        return ""
