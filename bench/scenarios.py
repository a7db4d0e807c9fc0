"""What the relay benchmark runs: its scenarios, and the relays it runs them against
with the settings each gets (so the report can say exactly what was compared)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "bench"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    publishers: int
    rate: float  # events a second per publisher; 0 = back to back
    subscribers: int
    v2: bool


SCENARIOS: dict[str, Scenario] = {
    "a": Scenario("a", "1000 pub x 2/s -> 5 subs", 1000, 2.0, 5, False),
    "b": Scenario("b", "50 pub x 20/s -> 200 v2 subs", 50, 20.0, 200, True),
    "c": Scenario("c", "1 pub flat out -> 5 v2 subs", 1, 0.0, 5, True),
    # --backplane: the fan-out flat out, where two relays share the writes to 200 sockets.
    "d": Scenario("d", "1 pub flat out -> 200 v2 subs", 1, 0.0, 200, True),
}


@dataclass(frozen=True)
class Relay:
    """A relay under test: how to start it, and the label the report prints."""

    key: str
    label: str
    scenarios: tuple[str, ...]  # the scenarios it runs by default
    root: Path = ROOT  # the checkout whose relay runs
    # Relay processes sharing the channels through a redis-server the bench starts
    # (relay/backplane.py); the load is spread over them. 1: one relay, no Redis.
    nodes: int = 1

    def command(self, host: str, port: int) -> list[str]:
        where = ["--host", host, "--port", str(port)]
        if self.key.startswith("dialjam"):
            return [sys.executable, "-m", "relay", *where, "--log-level", "WARNING"]
        naive = [sys.executable, str(ROOT / "bench" / "naive_relay.py"), *where]
        return [*naive, "--uvloop", "--orjson"] if self.key == "naive-uvloop" else naive

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALJAM_")}
        # A rehearsal relay on loopback: anonymous clients publish, as the baseline's do.
        env.update(DIALJAM_OPEN="1", PYTHONUNBUFFERED="1")
        if self.key in ("dialjam", "dialjam-redis") or self.key.startswith("dialjam@"):
            env.update(TUNED)
        if self.root != ROOT:
            # Another checkout, read and left as it was: no bytecode written into it.
            env.update(PYTHONPATH=str(self.root), PYTHONDONTWRITEBYTECODE="1")
        return env


def checkout(path: Path) -> Relay:
    """The tuned dialjam of another checkout (``--compare PATH``), to run side by side
    with this one's: a change to the relay measured against the code it changes."""
    root = path.resolve()
    return Relay(f"dialjam@{root.name}", f"dialjam (tuned) at {root}", ("a", "b", "c"), root)


# The tuned dialjam: no rate limit, no cap for the one address all the load comes from
# (scenario a opens 1,005 sockets from 127.0.0.1), and a send queue so deep that
# nothing is dropped unless the relay is truly overloaded.
TUNED = {
    "DIALJAM_RATE": "0",
    "DIALJAM_QUEUE": "100000",
    "DIALJAM_CONNECTIONS_PER_ADDRESS": "0",
}

RELAYS: dict[str, Relay] = {
    r.key: r
    for r in (
        Relay("dialjam", "dialjam (tuned)", ("a", "b", "c")),
        # The shipped settings (queue 2048, 20 frames/s a connection, 500 connections an
        # address): (b) fits them; (a)'s 1,005 sockets from one address and (c)'s
        # flat-out publisher do not.
        Relay("dialjam-defaults", "dialjam (shipped defaults)", ("b",)),
        # The baseline as people write it: asyncio's loop and the stdlib json module.
        Relay("naive", "naive (asyncio, json)", ("a", "b", "c")),
        # The same code on dialjam's event loop and JSON library: like for like.
        Relay("naive-uvloop", "naive (uvloop, orjson)", ("a", "b", "c")),
    )
}
# `--backplane`: the tuned dialjam as two relays sharing channels through Redis, beside
# the one tuned relay in the same run.
BACKPLANE = Relay("dialjam-redis", "dialjam (tuned) x2 relays + Redis", ("a", "b", "d"), nodes=2)

# What dialjam's ratios are taken against: the baseline on the same loop and library.
BASELINE = "naive-uvloop"
