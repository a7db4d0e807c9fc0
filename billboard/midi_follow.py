"""Who our MIDI port is connected to, followed from a thread of its own: the part of
"a synth patched in mid-show" that the JACK watch (jack_watch.py) and the ALSA watch
(alsa_watch.py) share.

Each watch gives a `look`: the (our port, peer) pairs connected now, or None once it
can look no more (the server gone, the client closed, the file vanished). A pair not
there at the previous look is a new connection, and `on_connect` hears its peers —
MidiOut.connected, which has the scheduler send the programs, Song Position and
Continue on its next 16th. A peer that leaves and comes back is new again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Links = set[tuple[str, str]]  # (our port, the peer it is connected to)


class Follower:
    """Polls `look` every `poll_s` from a daemon thread until `close` (or `look` gives
    None); `step` is one look, which tests call themselves."""

    def __init__(
        self,
        look: Callable[[], Links | None],
        on_connect: Callable[[list[str]], None],
        known: Links,
        poll_s: float,
    ) -> None:
        self._look = look
        self._on_connect = on_connect
        self._known = set(known)  # connected before we looked: not new
        self._poll_s = poll_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Follower:
        self._thread = threading.Thread(target=self._run, name="dialjam-midi-links", daemon=True)
        self._thread.start()
        return self

    def step(self) -> bool:
        """Look once and tell `on_connect` of new peers; False once it can look no more."""
        now = self._look()
        if now is None:
            return False
        new = sorted({peer for _, peer in now - self._known})
        self._known = now
        if new:
            try:
                self._on_connect(new)
            except Exception:  # our bug: said with its traceback, the watch goes on
                log.exception("a MIDI connection's handler failed")
        return True

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_s) and self.step():
            pass

    def close(self) -> None:
        """Stop following (waits for the thread's current look). Idempotent."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2 * self._poll_s + 1.0)
