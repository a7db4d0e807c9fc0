"""Record the show as a Standard MIDI File, one named track per instrument.

The recorder keeps what it hears in seconds on the engine's clock and converts to ticks
only when it writes, with the tempo map it was given (the session's BPM, and any tempo
change the operator made), so the file plays back at the times the notes sounded.

The first track (the conductor) holds the tempo map, the grid's 4/4 time signature and
the key signature of the session's key and scale, with a new one wherever the operator
changed either (`key_signature` says how a mode is written). Each instrument's track
starts with its program and its mix (volume, pan and reverb send, as the MIDI out sends
them); the groove bed's pitched parts, on MIDI channels of their own
(``engine/bed.py``), get tracks of their own ("bed bass", …) with theirs, so the file
plays the whole piece as a synth on the MIDI out hears it.

Writing is atomic: the file is written beside its final name and renamed over it
(`os.replace`), so a crash mid-write leaves the previous version, never half a file.
The billboard calls `flush` now and then, and `close` at the end.

`MidiRecorder` is an output of the scheduler (a `NoteSink` that `FollowsTempo`,
`FollowsKey` and `Flushes`, ``billboard/outputs.py``).
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import mido

from billboard.config import BillboardConfig
from billboard.engine.bed import DEFAULT_VOICES, BedVoice
from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.harmony import SCALES, parse_key
from billboard.engine.roles import channel_setup
from billboard.engine.tracks import DEFAULT_TRACKS, TrackSpec

TICKS_PER_BEAT: Final = 480
# Events on one tick go program change first, then note-offs, then note-ons: a key
# struck again on the tick its previous strike ends must not be cut short.
_FIRST, _OFF, _ON = -1, 0, 1
# The tempo map: (start in seconds, exact start tick, microseconds per beat) per tempo.
_Segments = list[tuple[float, float, int]]
# The key signatures: (time in seconds, sharps or -flats, 1 if minor) from time zero on.
_Signatures = list[tuple[float, int, int]]


def key_signature(key: int, scale: str) -> tuple[int, int]:
    """The SMF key signature of the engine's `key` (a pitch class) and `scale`: sharps
    (flats as a negative number) and 0 for major, 1 for minor.

    A key signature knows only major and minor keys, so a scale is written as the
    major or minor key of its own tonic, whichever shares its third: major, mixolydian
    and pentatonic as major; minor, dorian and minor_pentatonic as minor. The file then
    names the key the operator chose; the one note a mode changes (dorian's sixth,
    mixolydian's seventh) is an accidental against it. Up to six sharps (F# major, D#
    minor), flats beyond, as keys are usually written: Db major, not C#.
    """
    minor = 3 in SCALES[scale]  # a minor third over the tonic
    relative_major = (key + 3) % 12 if minor else key  # the same signature
    sharps = relative_major * 7 % 12  # fifths from C
    return (sharps - 12 if sharps > 6 else sharps), int(minor)


@dataclass(slots=True)
class _Take:
    """One note as played: when it began and, once known, when it ended (seconds)."""

    channel: int
    note: int
    velocity: int
    start: float
    end: float | None = None


# What a write needs, copied under the lock: tempo map, key signatures, where stuck
# notes end, and each track's notes.
_Snapshot = tuple[_Segments, _Signatures, float, dict[str, list[_Take]]]


class MidiRecorder:
    """Collects NoteOn/NoteOff and writes them to `path` as a type 1 MIDI file.

    Time zero is `start(t0)` or, without it, the first recorded note. A note on the
    channel of one of the `bed`'s voices goes to that voice's track. `key` and `scale`
    are the session's (ValueError if the engine knows neither). Safe to call from
    several threads (the scheduler records, the display may flush).
    """

    name = "record"

    def __init__(
        self,
        path: str | os.PathLike[str],
        tracks: Sequence[TrackSpec] = DEFAULT_TRACKS,
        bpm: float = 120.0,
        *,
        key: str = "C",
        scale: str = "major",
        bed: Sequence[BedVoice] = DEFAULT_VOICES,
        ticks_per_beat: int = TICKS_PER_BEAT,
        title: str = "dialjam",
    ) -> None:
        if bpm <= 0:
            raise ValueError(f"bpm must be positive, not {bpm}")
        self._key = parse_key(key)  # the session's, until the first of the changes below
        self._scale = _known_scale(scale)
        self.path = Path(path)
        # Say so now, not when the show ends and the recording is lost.
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"cannot record to {self.path}: no such directory")
        if not os.access(self.path.parent, os.W_OK):
            raise PermissionError(f"cannot record to {self.path}: directory not writable")
        self.tracks = tuple(tracks)
        self.bed = tuple(bed)
        self.ticks_per_beat = ticks_per_beat
        self.title = title
        self._t0: float | None = None
        self._latest = -math.inf  # the latest time heard: where stuck notes end
        self._bpm = bpm  # the session's tempo, until the first of the changes below
        self._tempo_changes: list[tuple[float, float]] = []  # (time, bpm), in time order
        # (time, key, scale), in time order; None: that one stays as it was.
        self._key_changes: list[tuple[float, int | None, str | None]] = []
        # A track of the file per instrument, then per voice of the bed; each voice's
        # track takes the notes on its channel.
        self._bed_tracks = {voice.channel: f"bed {voice.part}" for voice in self.bed}
        names = [track.name for track in self.tracks] + list(self._bed_tracks.values())
        self._takes: dict[str, list[_Take]] = {name: [] for name in names}
        # What each track of the file sets its channel to first: (channel, program or
        # None, mix controllers), as the MIDI out does (roles.channel_setup).
        self._setup = {
            name: (channel, program, controls)
            for name, channel, program, controls in channel_setup(self.tracks, self.bed)
        }
        self._open: dict[tuple[str, int, int], list[_Take]] = {}
        self._closed = False
        self._lock = threading.Lock()  # guards the notes
        self._write_lock = threading.Lock()  # one write at a time, in the order asked

    def length(self) -> tuple[int, float]:
        """The notes recorded so far, and the seconds from time zero to the last heard."""
        with self._lock:
            notes = sum(len(takes) for takes in self._takes.values())
            start = self._t0 if self._t0 is not None else self._latest
            return notes, max(0.0, self._latest - start) if notes else 0.0

    def start(self, t0: float) -> None:
        """Make `t0` (engine clock, seconds) time zero of the file."""
        with self._lock:
            self._t0 = t0

    def set_tempo(self, bpm: float, time: float) -> None:
        """The tempo changed to `bpm` at `time`: ticks after it are counted in it."""
        if bpm <= 0:
            raise ValueError(f"bpm must be positive, not {bpm}")
        with self._lock:
            self._tempo_changes.append((time, bpm))
            self._tempo_changes.sort(key=lambda change: change[0])

    def set_key(self, key: str, time: float) -> None:
        """The key changed to `key` ("C" … "B") at `time`: a new key signature there.
        ValueError if the engine knows no such key."""
        pitch_class = parse_key(key)
        with self._lock:
            self._key_changes.append((time, pitch_class, None))
            self._key_changes.sort(key=lambda change: change[0])

    def set_scale(self, scale: str, time: float) -> None:
        """The scale changed to `scale` at `time`: a new key signature there (if it is
        not written as the same one). ValueError if the engine knows no such scale."""
        _known_scale(scale)
        with self._lock:
            self._key_changes.append((time, None, scale))
            self._key_changes.sort(key=lambda change: change[0])

    def note_on(self, note: NoteOn) -> None:
        """Record a note starting at `note.time`."""
        with self._lock:
            if self._closed:
                return
            if note.velocity == 0:  # MIDI 1.0: a note-on of velocity 0 is a note-off
                self._end(note.track, note.channel, note.note, note.time)
                return
            self._heard(note.time)
            take = _Take(note.channel, note.note, note.velocity, note.time)
            name = self._bed_tracks.get(note.channel, note.track)
            self._takes.setdefault(name, []).append(take)
            self._open.setdefault((note.track, note.channel, note.note), []).append(take)

    def note_off(self, note: NoteOff) -> None:
        """Record the end of the earliest sounding note of that track, channel and key."""
        with self._lock:
            if not self._closed:
                self._end(note.track, note.channel, note.note, note.time)

    def panic(self) -> None:
        """A recording keeps what was played; the scheduler's note-offs end the notes."""

    def flush(self, now: float | None = None) -> None:
        """(Re)write the file atomically with everything recorded so far.

        Notes still sounding end in the written file at `now` (or the latest time
        heard) but go on sounding in the recording. Raises OSError if it cannot write;
        the previous file is then left as it was. Does nothing after `close`.
        """
        with self._write_lock:
            with self._lock:
                if self._closed:
                    return  # close() wrote the final file
                snapshot = self._snapshot(now)
            self._write(self._build(*snapshot))

    def close(self, now: float | None = None) -> None:
        """End every sounding note (at `now`, or the latest time heard), write the file
        and stop recording. Later calls do nothing."""
        with self._write_lock:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                end = self._stuck_end(now)
                for takes in self._open.values():
                    for take in takes:
                        take.end = max(end, take.start)
                self._open.clear()
                snapshot = self._snapshot(now)
            self._write(self._build(*snapshot))

    # -- inside the lock --

    def _heard(self, time: float) -> None:
        if self._t0 is None:
            self._t0 = time
        self._latest = max(self._latest, time)

    def _end(self, track: str, channel: int, key: int, time: float) -> None:
        takes = self._open.get((track, channel, key))
        if not takes:
            return  # nothing of ours is sounding there: nothing to end
        self._heard(time)
        take = takes.pop(0)
        take.end = max(time, take.start)
        if not takes:
            del self._open[(track, channel, key)]

    def _stuck_end(self, now: float | None) -> float:
        return max(self._latest, now if now is not None else -math.inf)

    def _tempo_map(self) -> _Segments:
        """(start seconds, exact start tick, microseconds per beat) from time zero on."""
        t0 = self._t0 if self._t0 is not None else 0.0
        bpm = self._bpm
        later: list[tuple[float, float]] = []
        for time, new_bpm in self._tempo_changes:
            if time <= t0:
                bpm = new_bpm  # changed before the file began: it is the opening tempo
            else:
                later.append((time, new_bpm))
        # Ticks are counted with the tempo as the file stores it (whole microseconds),
        # so a player reading the file lands every note at the second it sounded.
        segments = [(t0, 0.0, mido.bpm2tempo(bpm))]
        for time, new_bpm in later:
            start, tick, tempo = segments[-1]
            tempo_new = mido.bpm2tempo(new_bpm)
            if tempo_new == tempo:
                continue
            tick += (time - start) * 1e6 * self.ticks_per_beat / tempo
            segments.append((time, tick, tempo_new))
        return segments

    def _signatures(self) -> _Signatures:
        """(time, sharps, minor) of each key signature from time zero on: the session's
        key and scale, then each change that writes another signature."""
        t0 = self._t0 if self._t0 is not None else 0.0
        key, scale = self._key, self._scale
        signatures = [(t0, *key_signature(key, scale))]
        for time, new_key, new_scale in self._key_changes:
            key = key if new_key is None else new_key
            scale = scale if new_scale is None else new_scale
            signature = (max(time, t0), *key_signature(key, scale))  # before t0: the opening
            if signature[0] == signatures[-1][0]:
                signatures.pop()  # the last word at a moment is the one that holds
            if not signatures or signature[1:] != signatures[-1][1:]:
                signatures.append(signature)
        return signatures

    def _snapshot(self, now: float | None) -> _Snapshot:
        # Shallow copies only, so the scheduler's `record` never waits on a long write
        # (building 50 000 notes takes a quarter of a second). A take ended after the copy is
        # written ended or still sounding: both are true of some moment of the show.
        takes = {name: list(track_takes) for name, track_takes in self._takes.items()}
        return self._tempo_map(), self._signatures(), self._stuck_end(now), takes

    # -- outside the note lock --

    def _build(
        self,
        segments: _Segments,
        signatures: _Signatures,
        stuck_end: float,
        all_takes: dict[str, list[_Take]],
    ) -> bytes:
        """The whole file as bytes, byte for byte what mido would save. It is rebuilt
        at every flush from every note of the show, so a note costs two ints here, not
        two mido message objects: 7× faster, and the memory a flush takes for a while
        stays small beside the notes themselves (bench/soak.py watches both)."""

        def ticks(time: float) -> int:
            start, tick, tempo = segments[0]
            for segment in segments[1:]:
                if segment[0] > time:
                    break
                start, tick, tempo = segment
            seconds = max(0.0, time - start)  # anything before time zero lands on it
            return round(tick + seconds * 1e6 * self.ticks_per_beat / tempo)

        # Track 0 holds the tempo map (SMF type 1 convention), after the grid's time
        # signature and the key signatures.
        conductor = [
            _event(ticks(time), _FIRST, _KEY_SIGNATURE, (sharps & 0xFF) << 8 | minor)
            for time, sharps, minor in signatures
        ]
        conductor += [_event(round(tick), _FIRST, _SET_TEMPO, tempo) for _, tick, tempo in segments]
        chunks = [_track(self.title, conductor, head=_FOUR_FOUR)]
        for name, takes in all_takes.items():
            events: list[int] = []
            if name in self._setup:
                channel, number, controls = self._setup[name]
                if number is not None:
                    events.append(_event(0, _FIRST, 0xC0 | channel, number << 8))
                for control, value in controls:
                    events.append(_event(0, _FIRST, 0xB0 | channel, control << 8 | value))
            for take in takes:
                on = ticks(take.start)
                end = take.end  # read once: the scheduler may be ending it right now
                end = end if end is not None else max(stuck_end, take.start)
                off = max(ticks(end), on + 1)  # at least a tick, so the off follows its on
                channel, key = take.channel, take.note
                events.append(_event(on, _ON, 0x90 | channel, key << 8 | take.velocity))
                # Velocity 64 (a release of no particular speed), as mido writes it.
                events.append(_event(off, _OFF, 0x80 | channel, key << 8 | 64))
            chunks.append(_track(name, events))
        header = struct.pack(">4sIHHH", b"MThd", 6, 1, len(chunks), self.ticks_per_beat)
        return header + b"".join(chunks)

    def _write(self, data: bytes) -> None:
        directory = self.path.parent
        tmp = directory / f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            with open(tmp, "xb") as out:  # "x": never clobber; umask gives the mode
                out.write(data)
                out.flush()
                os.fsync(out.fileno())  # the bytes are on disk before the name points at them
            os.replace(tmp, self.path)  # atomic on POSIX and Windows within one directory
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _sync_directory(directory)


def _known_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: one of {', '.join(SCALES)}")
    return scale


# An event of a track is one int: its tick, its order on that tick, a status byte and
# two data bytes (a tempo: three). Sorted on what lies above the data (stably, so ties
# keep the order they were added in), a track is a list of ints, not of objects.
# A status byte no track event uses stands for a meta event: the bytes it opens with
# and how many of its data bytes follow.
_DATA_BITS = 24
_SET_TEMPO = 0xFF
_KEY_SIGNATURE = 0xFE
_METAS = {_SET_TEMPO: (b"\xff\x51\x03", 3), _KEY_SIGNATURE: (b"\xff\x59\x02", 2)}
# At tick 0 of the conductor: time_signature 4/4 (the denominator as a power of two),
# 24 MIDI clocks a metronome click (one a quarter note) and 8 32nds a quarter note.
_FOUR_FOUR = b"\x00\xff\x58\x04\x04\x02\x18\x08"


def _event(tick: int, order: int, status: int, data: int) -> int:
    return ((tick << 2 | (order - _FIRST)) << 8 | status) << _DATA_BITS | data


def _when(event: int) -> int:
    return event >> (_DATA_BITS + 8)


def _track(name: str, events: list[int], head: bytes = b"") -> bytes:
    """A named MTrk chunk from events at absolute ticks, in delta times, with running
    status, ending in end_of_track: byte for byte what mido.MidiFile.save writes.
    `head`: events already in bytes, at tick 0 after the name."""
    events.sort(key=_when)
    title = name.encode("latin-1", "replace")  # mido's charset for meta text
    out = bytearray(b"\x00\xff\x03" + _varint(len(title)) + title + head)
    now = 0
    running = -1
    mask = (1 << _DATA_BITS) - 1
    for event in events:
        tick = event >> (_DATA_BITS + 10)
        delta = tick - now
        now = tick
        if delta < 0x80:
            out.append(delta)
        else:
            out += _varint(delta)
        status = event >> _DATA_BITS & 0xFF
        data = event & mask
        meta = _METAS.get(status)
        if meta is not None:
            opening, size = meta
            out += opening + data.to_bytes(size, "big")
            running = -1  # a meta event ends running status
            continue
        if status != running:
            out.append(status)
            running = status
        out.append(data >> 8)
        if status & 0xE0 != 0xC0:  # program change and channel pressure: one data byte
            out.append(data & 0xFF)
    out += b"\x00\xff\x2f\x00"  # end_of_track
    return b"MTrk" + struct.pack(">I", len(out)) + bytes(out)


def _varint(value: int) -> bytes:
    """A MIDI variable-length quantity: seven bits a byte, high bit set but on the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); where directories cannot be opened
    (Windows) the rename is as durable as the OS makes it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recording(path: str | os.PathLike[str], config: BillboardConfig) -> MidiRecorder:
    """The recorder of a show (or a night rendered offline) with `config`'s tracks,
    tempo, key, scale and bed."""
    return MidiRecorder(
        path,
        config.tracks,
        config.bpm,
        key=config.key,
        scale=config.scale,
        bed=config.bed_midi(),
    )
