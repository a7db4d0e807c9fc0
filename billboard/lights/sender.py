"""The lights' own thread: the latest scene out to the fixtures, `fps` times a second.

Each turn reads the scheduler's latest `Scene` (an immutable snapshot, as the display
reads it), makes every universe's frame (`Patch.frames`) and sends the universes that
changed, plus each one at least every `KEEPALIVE_S`: a receiver that hears nothing for
2.5 s drops the source (E1.31 §6.7.1's network data loss timeout; Art-Net nodes do the
same), and a still building must not go dark.

A failed send (no route, a host name that does not resolve, a cable pulled) is the
network's fault, not ours: it is logged once (again after `LOG_EVERY_S` if it goes on),
the turn ends, and sending starts again after a backoff, with a new socket and a new
look-up, every universe sent again in full. The show never waits on the lights. On
stop, every universe goes out dark, so no fixture freezes lit.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping

from relay.backoff import backoff_delay
from relay.ratelimit import LogOnce

from ..engine.scene import Scene
from .patch import Patch
from .settings import LightsConfig
from .wire import Link, Sacn, Wire, wire_for

log = logging.getLogger("billboard.lights")

KEEPALIVE_S = 0.8  # every universe at least this often, changed or not
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
LOG_EVERY_S = 300.0  # a failure that goes on is said again this often
BLACKOUT_REPEATS = 2  # the dark frame twice: one lost datagram must not leave a lamp lit
SACN_TERMINATIONS = 3  # E1.31 §6.2.6: three packets with Stream_Terminated set


class Refresh:
    """Which universes go out now: one that changed at once, every one again
    `keepalive_s` after it last went out. Pure: time is passed in."""

    def __init__(self, keepalive_s: float = KEEPALIVE_S) -> None:
        self.keepalive_s = keepalive_s
        self._sent: dict[int, tuple[bytes, float]] = {}

    def due(self, frames: Mapping[int, bytes], now: float) -> list[int]:
        out = []
        for universe, data in frames.items():
            last = self._sent.get(universe)
            if last is None or last[0] != data or now - last[1] >= self.keepalive_s:
                out.append(universe)
        return out

    def sent(self, universe: int, data: bytes, now: float) -> None:
        self._sent[universe] = (data, now)

    def forget(self) -> None:
        """Everything is due again (after a failure, a receiver may have missed it)."""
        self._sent.clear()


class LightsOut:
    """The scene to DMX fixtures over Art-Net or sACN; see the module docstring.

    `scene` returns the latest scene (the scheduler's). `step` is one turn, at `now`
    on `clock`; the thread runs it `config.fps` times a second."""

    def __init__(
        self,
        config: LightsConfig,
        patch: Patch,
        scene: Callable[[], Scene],
        *,
        clock: Callable[[], float] = time.monotonic,
        wire: Wire | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.patch = patch
        self.scene = scene
        self.clock = clock
        self.wire = wire if wire is not None else wire_for(config)
        self.link = Link(config.destination_port)
        self.refresh = Refresh()
        self.rand = rand
        self.status = "starting"  # "sending", or "offline: <why>"
        self._failures = 0
        self._retry_at = float("-inf")
        self._log = LogOnce(every_s=LOG_EVERY_S)
        self._bugs = LogOnce()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dialjam-lights", daemon=True)

    @property
    def where(self) -> str:
        target = self.config.target or "multicast"
        return f"{self.wire.name} to {target}:{self.link.port}"

    # -- from the show --

    def start(self) -> None:
        log.info("lights on: %s, %d universe(s)", self.where, len(self.patch.universes))
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send every universe dark, then close. Returns within about `timeout`."""
        self._stop.set()
        if self._thread.ident is None:  # never started: nothing was lit
            self.link.close()
        elif self._thread.is_alive():
            self._thread.join(timeout)

    # -- one turn --

    def step(self, now: float) -> None:
        """Send what is due of the latest scene, unless waiting to retry a failure."""
        if now < self._retry_at:
            return
        frames = self.patch.frames(self.scene())
        for universe in self.refresh.due(frames, now):
            data = frames[universe]
            try:
                self._send(universe, data)
            except OSError as exc:
                self._failed(exc, now)
                return
            self.refresh.sent(universe, data, now)
        if self._failures or self.status != "sending":
            if self._failures:
                log.info("sending again (%s)", self.where)
            self._failures = 0
            self.status = "sending"

    def _send(self, universe: int, data: bytes, *, last: bool = False) -> None:
        self.link.send(self.wire.host(universe), self.wire.packet(universe, data, last=last))

    def _failed(self, exc: OSError, now: float) -> None:
        why = exc.strerror or str(exc) or type(exc).__name__
        self.status = f"offline: {why}"
        self._log.log(
            log,
            logging.WARNING,
            (type(exc).__name__, exc.errno),
            "cannot send %s (%s); the show goes on, trying again",
            self.where,
            why,
            now=now,
        )
        self._retry_at = now + backoff_delay(self._failures, RETRY_FIRST_S, RETRY_MAX_S, self.rand)
        self._failures += 1
        self.link.reset()
        self.refresh.forget()

    # -- the thread --

    def _run(self) -> None:
        period = 1 / self.config.fps
        due = self.clock()
        try:
            while not self._stop.is_set():
                now = self.clock()
                try:
                    self.step(now)
                except Exception:  # our bug: shown with its traceback once; lights go on
                    if self._bugs.allow("step", now):
                        log.exception("a frame of the lights failed; the show goes on")
                due = max(due + period, now)  # a late turn is not caught up in a burst
                self._stop.wait(max(0.0, due - self.clock()))
        finally:
            self._finish()

    def _finish(self) -> None:
        """Every universe dark (twice), sACN's stream ended, the socket closed."""
        try:
            for _ in range(BLACKOUT_REPEATS):
                for universe, data in self.patch.blackout().items():
                    self._send(universe, data)
            if isinstance(self.wire, Sacn):
                for _ in range(SACN_TERMINATIONS):
                    for universe, data in self.patch.blackout().items():
                        self._send(universe, data, last=True)
        except OSError as exc:
            log.warning("could not send the lights dark (%s)", exc.strerror or exc)
        finally:
            self.link.close()
            self.status = "stopped"
