"""What each pitched track holds: a caller's track plays one line, not a pile.

A pitched track's note (a press, a loop's replay, a departed caller's fading loop) is
held from its step to its end step, and its note-off leaves when that step is rendered,
not when the note starts. So a later note on the same track can end it early: a new
press or loop note cuts whatever the track still holds from an earlier step, as a
keyboard player lifts one chord to play the next, a bass player damps the last note
and a singer sings one note at a time. The notes of one step (a chord) sound together,
and a note already held from this same step is not started twice.

It also keeps MIDI sane: the same pitch on the same channel is never started again
before it has ended, which most synths would misread (the first note-off would end
the second note).

Pure: it hands back the notes to send; the engine stamps them on its grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .events import Note, NoteOff, NoteOn


@dataclass(slots=True)
class _Held:
    channel: int
    start: int  # the step it began on
    end: int  # the step its note-off is due on


class Held:
    """The notes held on each pitched track, and their note-offs to come."""

    def __init__(self, time_of: Callable[[int], float]) -> None:
        self._time_of = time_of
        self._tracks: dict[str, dict[int, _Held]] = {}

    def start(
        self,
        track: str,
        channel: int,
        pitches: Sequence[int],
        velocity: int,
        step: int,
        when: float,
        end: int,
        rendered: int,
    ) -> list[Note]:
        """Start `pitches` at `step` (sounding at `when`) until step `end`: the note-offs
        of what the track held from earlier steps (at `when`), then the note-ons. A
        note-off whose step is already `rendered` leaves now, stamped with its time."""
        held = self._tracks.setdefault(track, {})
        out: list[Note] = []
        for pitch, note in list(held.items()):
            if note.start < step:
                out.append(NoteOff(when, step, track, note.channel, pitch))
                del held[pitch]
        for pitch in pitches:
            same = held.get(pitch)
            if same is not None:  # this step already holds it: hold it the longer
                same.end = max(same.end, end)
                continue
            out.append(NoteOn(when, step, track, channel, pitch, velocity))
            held[pitch] = _Held(channel, step, end)
        if end <= rendered:
            out.extend(self.due(end, track))
        return out

    def due(self, step: int, only: str | None = None) -> list[Note]:
        """The note-offs due by `step` (of one track, or of all), stamped with their
        steps' times; they are no longer held."""
        out: list[Note] = []
        for track, held in self._tracks.items():
            if only is not None and track != only:
                continue
            for pitch, note in list(held.items()):
                if note.end <= step:
                    at = self._time_of(note.end)
                    out.append(NoteOff(at, note.end, track, note.channel, pitch))
                    del held[pitch]
        return out

    def release(self, when: float, step: int) -> list[Note]:
        """Every held note ended at once, at `when` (a panic)."""
        out: list[Note] = []
        for track, held in self._tracks.items():
            out.extend(NoteOff(when, step, track, n.channel, pitch) for pitch, n in held.items())
        self._tracks.clear()
        return out
