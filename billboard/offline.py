"""A night rendered offline from its event log: ``python -m billboard --replay
night.jsonl --render night.wav [--record night.mid]``.

The events of a ``--log-events`` file go through an engine built from the same settings
as the live show (config file and flags), anchored at time 0 with the log's times,
exactly as the live scheduler would play them (`play_events`). Their notes become
the speakers' mix (``billboard/render.py``), through the master limiter
(``billboard/mix.py``), written as a 16-bit stereo WAV file, and,
with ``--record``, the same Standard MIDI File the live recorder writes. No window, no
sound device, no relay and no real clock: a night renders many times faster than it
was played.

The music lasts until ``--duration`` seconds when it is given (as a live show with that
flag stops then), else until 4 s after the last event, so loops and reverbs ring out;
a note still sounding then keeps its own end, and the file ends when the last sound
has died away.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .config import BillboardConfig
from .engine import Command, Engine, InputEvent, Note, NoteOn
from .engine.playback import play_events
from .eventlog import read_events
from .mix import master
from .outputs import follow_key, follow_tempo
from .recorder import MidiRecorder, recording
from .render import RATE, render, write_wav
from .samples import load_sample_sets
from .scheduler import LOOKAHEAD_S

TAIL_S: Final = 4.0  # after the last event: loops and reverbs ring out


class RenderError(Exception):
    """A render that cannot be done, with a message the person who asked can act on."""


@dataclass(frozen=True)
class Rendered:
    """What a render made, for its closing line."""

    wav: Path
    seconds: float  # of music
    took: float  # seconds of work
    clipped: int  # samples clipped to full scale
    limited_pct: float = 0.0  # 10 ms blocks the master limiter turned down > 0.5 dB
    limited_db: float = 0.0  # the most it turned down

    def summary(self) -> str:
        speed = self.seconds / self.took if self.took > 0 else float("inf")
        return (
            f"rendered {self.seconds:.1f} s of music in {self.took:.1f} s "
            f"({speed:.0f}× real time), limiter on {self.limited_pct:.1f} % of the "
            f"time (at most -{self.limited_db:.1f} dB), {self.clipped} samples clipped "
            f"-> {self.wav}"
        )


def read_night(path: Path) -> list[tuple[float, InputEvent]]:
    """The events of a ``--log-events`` file, in time order (a line that is not an
    event is skipped with a warning). RenderError when it cannot be read or holds none."""
    try:
        events = list(read_events(path))
    except OSError as exc:
        raise RenderError(f"cannot read the event log {path}: {exc.strerror or exc}") from exc
    if not events:
        raise RenderError(f"the event log {path} holds no events: nothing to render")
    # Live, a replay hands the scheduler each event at its own time, in time order.
    return sorted(events, key=lambda item: item[0])


def night_notes(
    config: BillboardConfig, events: Sequence[tuple[float, InputEvent]], until: float
) -> list[Note]:
    """The notes the live show plays for `events` (seconds from its start) until
    `until`, in the order its outputs get them."""
    engine = Engine(config.engine_config(), start=0.0)
    return play_events(engine, events, until, LOOKAHEAD_S)


def render_night(
    config: BillboardConfig,
    replay: Path,
    wav: Path,
    *,
    record: Path | None = None,
    duration: float | None = None,
    sounds_dir: Path,
) -> Rendered:
    """Render the night logged in `replay` to `wav` (and its MIDI to `record`).
    RenderError, saying what to fix, when an input cannot be read or an output written;
    each output is checked before the work starts."""
    began = time.perf_counter()
    _check_writable(wav)
    recorder: MidiRecorder | None = None
    if record is not None:
        _check_writable(record)
        try:
            recorder = recording(record, config)
        except OSError as exc:
            raise RenderError(str(exc)) from exc
        recorder.start(0.0)  # the file's time zero is the log's, as live
    events = read_night(replay)
    until = duration if duration is not None else events[-1][0] + TAIL_S
    try:
        sample_sets = load_sample_sets(sounds_dir)
    except OSError as exc:
        raise RenderError(f"cannot read the samples: {exc}") from exc
    notes = night_notes(config, events, until)
    panics = [at for at, event in events if _is_panic(event) and at <= until]
    tempo = _TempoMap()
    for at, event in events:
        if at <= until:
            follow_tempo([tempo], event, at)
    audio = render(
        notes,
        sample_sets,
        config.tracks,
        until=until,
        panics=panics,
        tempi=tempo.changes,
        bpm=config.bpm,
    )
    limited = master(audio, RATE)
    try:
        clipped = write_wav(wav, limited.audio)
    except OSError as exc:
        raise RenderError(f"cannot write {wav}: {exc.strerror or exc}") from exc
    if recorder is not None:
        for at, event in events:
            if at <= until:
                follow_tempo([recorder], event, at)
                follow_key([recorder], event, at)
        for note in notes:
            if isinstance(note, NoteOn):
                recorder.note_on(note)
            else:
                recorder.note_off(note)
        try:
            recorder.close()
        except OSError as exc:
            raise RenderError(f"cannot write {record}: {exc.strerror or exc}") from exc
    return Rendered(
        wav,
        len(audio) / RATE,
        time.perf_counter() - began,
        clipped,
        limited.blocks_pct,
        limited.most_db,
    )


class _TempoMap:
    """The operator's tempo changes, as the live outputs hear them (`FollowsTempo`)."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, float]] = []

    def set_tempo(self, bpm: float, time: float) -> None:
        self.changes.append((time, bpm))


def _is_panic(event: InputEvent) -> bool:
    return isinstance(event, Command) and event.name == "panic"


def _check_writable(path: Path) -> None:
    """Say now, not after the work, that `path` cannot be written."""
    if path.is_dir():
        raise RenderError(f"cannot write {path}: it is a directory")
    if not path.parent.is_dir():
        raise RenderError(f"cannot write {path}: no such directory {path.parent}")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise RenderError(f"cannot write {path}: permission denied")
