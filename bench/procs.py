"""Processes under measurement: free ports, starting and stopping a relay, CPU time and
resident memory from /proc, pinning to cores, descriptor limits."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import IO

from bench.wsclient import HOST, BenchError


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Pinning:
    """The relay on one core, the load generator and this script on another; children
    inherit the affinity of this process at fork, so it is set around each spawn."""

    def __init__(self) -> None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.relay_cpu: int | None = cpus[0] if len(cpus) >= 2 else None
        self.load_cpu: int | None = cpus[1] if len(cpus) >= 2 else None
        self.all = set(cpus)
        if self.load_cpu is not None:
            os.sched_setaffinity(0, {self.load_cpu})

    def describe(self) -> str:
        if self.relay_cpu is None:
            return "not pinned (fewer than 2 cores available): relay and load share the CPU"
        return f"relay on CPU {self.relay_cpu}, load generator on CPU {self.load_cpu}"

    @contextlib.contextmanager
    def on(self, cpu: int | None) -> Iterator[None]:
        if cpu is None:
            yield
            return
        os.sched_setaffinity(0, {cpu})
        try:
            yield
        finally:
            os.sched_setaffinity(0, {self.load_cpu} if self.load_cpu is not None else self.all)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise BenchError(f"relay exited with code {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"relay did not listen on {HOST}:{port} within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3.0)


def tail(f: IO[bytes], limit: int = 600) -> str:
    f.seek(0)
    text = f.read().decode(errors="replace").strip()
    return text[-limit:]


class CpuClock:
    """utime+stime of the relay (from /proc; of all its processes together when it runs
    as several) and of this process, in seconds."""

    def __init__(self, relay_pid: int, *more_pids: int) -> None:
        self.paths = [f"/proc/{pid}/stat" for pid in (relay_pid, *more_pids)]
        self.tick = os.sysconf("SC_CLK_TCK")

    def relay(self) -> tuple[float, float]:
        user = system = 0.0
        for path in self.paths:
            with open(path, "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            user += int(fields[11]) / self.tick  # field 14
            system += int(fields[12]) / self.tick  # field 15
        return user, system

    @staticmethod
    def own() -> tuple[float, float]:
        t = os.times()
        return t.user, t.system

    def machine(self) -> float:
        """CPU seconds all processes (and interrupts) spent on every core so far."""
        with open("/proc/stat", "rb") as f:
            cpu = f.readline().split()
        # user nice system idle iowait irq softirq steal ...
        return sum(int(cpu[i]) for i in (1, 2, 3, 6, 7, 8)) / self.tick


def raise_fd_limit() -> None:
    """1,000 publishers need more descriptors than a default soft limit of 1,024; the
    relays and load generator inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A redis-server on a free port of 127.0.0.1, no snapshots, in a temporary folder:
    its URL and process id."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("needs redis-server (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--dir", folder],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port, proc, 15.0)
            yield f"redis://{HOST}:{port}/0", proc.pid
        finally:
            stop(proc)
