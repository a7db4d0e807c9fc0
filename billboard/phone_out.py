"""The phone mixes, live: one more output of the show (a `NoteSink` beside the
speakers), rendered 20 ms at a time on a thread of its own and handed over as the
relay's bundles (``relay/phone_audio.py``), one a frame.

- **Fed on the engine thread, rendered on the phone thread.** The scheduler hands this
  sink each note at its time, as it hands the speakers theirs; `note_on`, `note_off`,
  `panic`, `prepare` and the cues only append to a deque (thread-safe, never waits),
  and the phone thread moves what it holds into the `PhoneMixer`, which only that
  thread touches.
- **Paced on the engine clock.** Frames lie on the clock's own 20 ms grid (frame k
  starts at 160·k samples of 8 kHz), so the same notes give the same bytes whenever the
  show started; frame k is rendered at its end plus `GRACE_S` (the notes due in it
  have left the scheduler by then; one later still starts at the next frame's first
  sample), on absolute deadlines: a late wake does not push the next frames later.
  More than `CATCH_UP_FRAMES` behind (a stalled machine), the frames missed are
  skipped, never rendered in a burst: the relay would only drop them.
- **Rendered once, sent to many.** The shared mix, and a mix for each track someone
  holds; a caller with a cue playing gets a frame of their own. The bundle names each
  holder and each cued caller with their mix; everyone else hears the shared mix.
- **Cues** (``billboard/phone_cues.py``) from the engine's own updates (`CueWatch`):
  ``track`` when a caller gets a track, ``front`` when a caller reaches the front of
  the waiting line, ``lost`` when the billboard ends their turn (turn, idle, kicked).
- While nobody takes the bundles (the link is down, or the relay has phone music off:
  `wanted` false), nothing is rendered: the notes handed over are let go, and the
  frames start again on the grid when the link is back (a note that began in the gap
  is not heard; one that began before ends on time, its voice placed on the clock).

The phone mix costs the billboard about 0.7 ms of one core per 20 ms frame at eight
holders (``bench/phone_mix.py``), and this output's hand-over and bundles a little
more (``bench/phone_out.py`` measures both in one run): ~4-5 % of a core, on this
thread, off the engine's.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from relay.contract.events import Assign, Left
from relay.phone_audio import MAX_CALLERS, MAX_MIXES, encode_bundle
from relay.ratelimit import LogOnce

from .engine.events import NoteOff, NoteOn
from .phone_cues import Cue
from .phone_mix import FRAME, RATE, PhoneFrame, PhoneMixer

log = logging.getLogger("billboard.phone")

FRAME_S: Final = FRAME / RATE
GRACE_S: Final = 0.004  # a frame is rendered this long after it ends
CATCH_UP_FRAMES: Final = 5  # further behind than this, missed frames are skipped
# What may wait for the phone thread (drained every 20 ms; minutes of a busy show):
# bounded for a thread that is stalled or gone.
INBOX_MAX: Final = 50_000
LOST_REASONS: Final = frozenset({"idle", "turn", "kicked"})
_NAMEABLE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # a caller id a bundle can carry

Holders = Mapping[str, str]  # caller → the track they hold


@dataclass(frozen=True, slots=True)
class _Panic:
    time: float


@dataclass(frozen=True, slots=True)
class _Prepare:
    note: NoteOn


@dataclass(frozen=True, slots=True)
class _Cue:
    caller: str
    kind: Cue
    time: float


Item = NoteOn | NoteOff | _Panic | _Prepare | _Cue


class CueWatch:
    """Which caller hears which cue, from the engine's `Assign`s and `Left`s, each once:
    a repeated assign (a keypad joining again) or a place retold is no news. Pure; on
    the engine thread."""

    def __init__(self) -> None:
        self._track: dict[str, str] = {}  # caller → track, while they hold one
        self._front: set[str] = set()  # callers first in line

    def updates(self, updates: Iterable[object]) -> list[tuple[str, Cue]]:
        cues: list[tuple[str, Cue]] = []
        for update in updates:
            if isinstance(update, Assign):
                caller = update.caller
                if update.track is not None:
                    if self._track.get(caller) != update.track:
                        cues.append((caller, "track"))
                    self._track[caller] = update.track
                    self._front.discard(caller)
                    continue
                self._track.pop(caller, None)
                if update.line == 1 and caller not in self._front:
                    cues.append((caller, "front"))
                    self._front.add(caller)
                elif update.line != 1:
                    self._front.discard(caller)
            elif isinstance(update, Left):
                self.forget(update.caller)
                if update.reason in LOST_REASONS:
                    cues.append((update.caller, "lost"))
        return cues

    def forget(self, caller: str) -> None:
        """`caller` is gone (their leave, or the billboard's)."""
        self._track.pop(caller, None)
        self._front.discard(caller)

    def __len__(self) -> int:
        return len(self._track) + len(self._front)


def bundle_of(seq: int, frame: PhoneFrame, holders: Holders) -> bytes:
    """`frame` as the relay's bundle: the shared mix first, then one mix per track
    held, then a frame for each caller a cue plays to (as many as a bundle carries);
    each holder and cued caller named with their mix, everyone else hearing mix 0."""
    mixes = [frame.mixes[None].ulaw]
    index: dict[str | None, int] = {None: 0}
    callers: dict[str, int] = {}
    for caller, track in holders.items():
        if track not in frame.mixes or not _NAMEABLE.fullmatch(caller):
            continue
        if track not in index:
            if len(mixes) >= MAX_MIXES:
                continue  # more tracks than a bundle carries: this one's holder hears mix 0
            index[track] = len(mixes)
            mixes.append(frame.mixes[track].ulaw)
        callers[caller] = index[track]
    for caller in frame.cued:
        if len(mixes) >= MAX_MIXES or len(callers) >= MAX_CALLERS:
            break
        if _NAMEABLE.fullmatch(caller):
            callers[caller] = len(mixes)
            mixes.append(frame.for_caller(caller, holders.get(caller)).ulaw)
    return encode_bundle(seq, mixes, callers)


class PhoneOut:
    """The show's phone output; see the module docstring.

    `make_mixer` builds the mixer on the phone thread (it loads the samples: the show
    starts without waiting); `send` takes each bundle on that thread and must only hand
    it over; `holders` says who holds which track now; `wanted` whether anyone takes
    the bundles now. `render_due` is the whole of a turn, for tests to drive with
    their own clock; `start` runs it on the thread."""

    name = "phone"

    def __init__(
        self,
        make_mixer: Callable[[], PhoneMixer],
        send: Callable[[bytes], None],
        holders: Callable[[], Holders],
        *,
        clock: Callable[[], float] = time.monotonic,
        wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        self._make_mixer = make_mixer
        self._send = send
        self._holders = holders
        self._wanted = wanted
        self.clock = clock
        self.mixer: PhoneMixer | None = None
        self.status = "starting"
        self.frames = 0  # rendered
        self.idle = 0  # frames not rendered: nobody took them
        self.sent = 0  # bundles handed over
        self.skipped = 0  # frames skipped after a stall
        self.failures = 0
        self.lost = 0  # notes dropped: the phone thread was not taking them
        # The last 5 s of frames: the phone thread's CPU time for each, and how long
        # after its end each left (its grace, and the machine's delays).
        self.cpu_ms: deque[float] = deque(maxlen=250)
        self.late_ms: deque[float] = deque(maxlen=250)
        self.cues = CueWatch()
        self._inbox: deque[Item] = deque()
        self._next: int | None = None  # the next frame's first sample (8 kHz)
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = LogOnce(every_s=60.0)

    # -- the NoteSink side (engine thread) ---------------------------------------------

    def note_on(self, note: NoteOn) -> None:
        self._put(note)

    def note_off(self, note: NoteOff) -> None:
        self._put(note)

    def panic(self) -> None:
        self._put(_Panic(self.clock()))

    def prepare(self, note: NoteOn) -> None:
        """A note to come: its sound is made on the phone thread before it is due."""
        self._put(_Prepare(note))

    def close(self) -> None:
        self.stop()

    def updates(self, updates: Iterable[object]) -> None:
        """The engine's caller updates: each cue they call for, from now."""
        now = self.clock()
        for caller, kind in self.cues.updates(updates):
            self._put(_Cue(caller, kind, now))

    def forget(self, caller: str) -> None:
        """`caller` left (a gateway's or keypad's leave): no cue state kept for them."""
        self.cues.forget(caller)

    def _put(self, item: Item) -> None:
        if len(self._inbox) >= INBOX_MAX:
            self.lost += 1  # the thread is gone or stalled: never grow without bound
            return
        self._inbox.append(item)

    # -- the phone thread --------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dialjam-phone", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    def next_due(self) -> float:
        """When the next frame is due to be rendered (engine clock)."""
        if self._next is None:
            return self.clock()
        return (self._next + FRAME) / RATE + GRACE_S

    def render_due(self, now: float) -> int:
        """Render (and send) every frame due by `now`; how many were rendered."""
        if self.mixer is None:  # loading the samples takes a while: frames start after
            self.mixer = self._make_mixer()
            self.status = "rendering"
            return 0
        if self._next is None:  # the first frame: the next on the clock's 20 ms grid
            self._next = math.ceil(now * RATE / FRAME) * FRAME
        rendered = 0
        while self.next_due() <= now:
            behind = now - self.next_due()
            if behind > CATCH_UP_FRAMES * FRAME_S:
                missed = int(behind / FRAME_S)
                self._next += missed * FRAME
                self.skipped += missed
                self._seq += missed
                continue
            start, self._next = self._next, self._next + FRAME
            rendered += self._render(start)
        return rendered

    def _render(self, start: int) -> bool:
        """The frame from sample `start`, rendered and sent; False: nobody takes it."""
        mixer = self.mixer
        assert mixer is not None
        seq, self._seq = self._seq, self._seq + 1
        if not self._wanted():  # nobody takes it: nothing rendered, the notes let go
            self._inbox.clear()
            self.idle += 1
            self.status = "waiting for the relay"
            return False
        began = time.thread_time()
        prepares = self._drain(mixer)
        holders = dict(self._holders())
        frame = mixer.frame(start / RATE, set(holders.values()))
        self.frames += 1
        self._send(bundle_of(seq, frame, holders))
        self.sent += 1
        self.late_ms.append((self.clock() - (start + FRAME) / RATE) * 1000)
        # Sounds for notes to come are made after the frame has left: a new pitch's
        # resampling (5-20 ms) never holds a frame back.
        for note in prepares:
            mixer.prepare(note)
        self.cpu_ms.append((time.thread_time() - began) * 1000)
        self.status = "rendering"
        return True

    def _drain(self, mixer: PhoneMixer) -> list[NoteOn]:
        """What the engine thread handed over, into the mixer; the notes to prepare."""
        inbox = self._inbox
        prepares: list[NoteOn] = []
        while inbox:
            item = inbox.popleft()
            if isinstance(item, NoteOn):
                mixer.note_on(item)
            elif isinstance(item, NoteOff):
                mixer.note_off(item)
            elif isinstance(item, _Panic):
                mixer.panic(item.time)
            elif isinstance(item, _Prepare):
                prepares.append(item.note)
            else:
                mixer.cue(item.caller, item.kind, item.time)
        return prepares

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.render_due(self.clock())
            except Exception:  # our bug: said (once a minute), the frame skipped, going on
                self.failures += 1
                self.status = "failing"
                if self._log.allow("render", time.monotonic()):
                    log.exception("the phone mix failed (%d so far); going on", self.failures)
                if self.mixer is None:  # it could not even start (no samples)
                    self._stop.wait(5.0)
                    continue
            wait = self.next_due() - self.clock()
            if wait > 0:
                self._stop.wait(wait)

    def cpu_ms_mean(self) -> float | None:
        """The phone thread's CPU time per frame, over the last 5 s."""
        ms = list(self.cpu_ms)
        return sum(ms) / len(ms) if ms else None

    def late_ms_max(self) -> float | None:
        """The latest a frame left after its end, over the last 5 s."""
        ms = list(self.late_ms)
        return max(ms) if ms else None
