"""The shapes of the billboard's outputs: what the scheduler plays notes through.

Every output (the speakers, ``billboard/sound.py``; MIDI, ``billboard/midi_out.py``;
the recording, ``billboard/recorder.py``) is a `NoteSink`. A few have one more hook,
each its own small protocol, checked with ``isinstance`` where it is used:

- `PreparesNotes`: work to do before a note is due (the mixer resamples a pitch the
  first time), called by the scheduler as soon as the note is rendered;
- `FollowsTempo`: the operator's tempo changes (a recording keeps them in its tempo
  map);
- `FollowsKey`: the operator's key and scale changes (a recording writes a key
  signature for each);
- `Flushes`: written out now and then, so a crash loses little;
- `ClockSink`: MIDI beat clock for synths that follow ours;
- `SyncsFollowers`: a clock whose followers can join mid-show (set up and put in time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .engine import Command, InputEvent, NoteOff, NoteOn
from .engine.clock import MAX_BPM, MIN_BPM
from .engine.harmony import NOTE_NAMES, SCALES, parse_key


class NoteSink(Protocol):
    """An output the scheduler plays notes through, at each note's time."""

    name: str

    def note_on(self, note: NoteOn) -> None: ...
    def note_off(self, note: NoteOff) -> None: ...
    def panic(self) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class PreparesNotes(Protocol):
    """An output that can get a note ready before it is due."""

    def prepare(self, note: NoteOn) -> None: ...


@runtime_checkable
class FollowsTempo(Protocol):
    """An output that hears the tempo change to `bpm` at `time` (engine clock)."""

    def set_tempo(self, bpm: float, time: float) -> None: ...


@runtime_checkable
class FollowsKey(Protocol):
    """An output that hears the key change to `key` (a pitch class's name, "C" … "B")
    or the scale to `scale` (one of the engine's) at `time` (engine clock)."""

    def set_key(self, key: str, time: float) -> None: ...
    def set_scale(self, scale: str, time: float) -> None: ...


@runtime_checkable
class Flushes(Protocol):
    """An output that writes what it holds so far when asked."""

    def flush(self) -> None: ...


class ClockSink(Protocol):
    """MIDI beat clock: Start, 24 Timing Clocks a quarter note, Stop."""

    name: str

    def clock_start(self) -> None: ...
    def clock_tick(self) -> None: ...
    def clock_stop(self) -> None: ...


@runtime_checkable
class SyncsFollowers(Protocol):
    """A beat clock that followers may join mid-show: `sync_requested` is True once
    after one joined; `clock_sync(sixteenths)`, just before the clock that begins that
    16th (counted from Start), sets them up and tells them where the song is."""

    def sync_requested(self) -> bool: ...
    def clock_sync(self, sixteenths: int) -> None: ...


def follow_tempo(outputs: Iterable[object], event: InputEvent, at: float) -> None:
    """An operator's `tempo` command at `at` reaches the outputs that keep a tempo map
    (`FollowsTempo`), clamped as the engine clamps it; any other event, or a tempo
    command the engine would ignore, reaches nobody."""
    if not (isinstance(event, Command) and event.name == "tempo"):
        return
    try:
        bpm = min(MAX_BPM, max(MIN_BPM, float(event.args["bpm"])))
    except (KeyError, TypeError, ValueError):
        return
    for output in outputs:
        if isinstance(output, FollowsTempo):
            output.set_tempo(bpm, at)


def follow_key(outputs: Iterable[object], event: InputEvent, at: float) -> None:
    """An operator's `key` or `scale` command at `at` reaches the outputs that keep the
    key (`FollowsKey`) as the engine reads it (a key by its pitch class: "Bb" is
    "A#"); any other event, or a key or scale the engine would ignore, reaches nobody."""
    if not (isinstance(event, Command) and event.name in ("key", "scale")):
        return
    value: str | None = None
    try:
        if event.name == "key":
            value = NOTE_NAMES[parse_key(str(event.args["key"]))]
        elif str(event.args["name"]) in SCALES:
            value = str(event.args["name"])
    except (KeyError, TypeError, ValueError):
        return
    if value is None:
        return
    for output in outputs:
        if isinstance(output, FollowsKey):
            (output.set_key if event.name == "key" else output.set_scale)(value, at)
