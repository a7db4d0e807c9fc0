"""A session's notes without a clock: the engine driven through timed input events as
the scheduler drives it live, for rendering a night offline and for measuring the music.

Live, the scheduler (``billboard/scheduler.py``) renders up to each event's own time
before applying it, renders `lookahead` ahead of its clock, and hands each note to the
outputs when it is due; a ``panic`` command drops the notes not yet started and ends
the sounding ones at once. `play_events` does the same in one pass, so the same events
at the same times give the same notes, in the same order, as the show played them.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections import Counter
from collections.abc import Iterable

from .engine import Engine
from .events import Command, InputEvent, Note, NoteOff, NoteOn


def play_events(
    engine: Engine,
    events: Iterable[tuple[float, InputEvent]],
    until: float,
    lookahead: float,
) -> list[Note]:
    """Every note `engine` plays for `events` (time, event; in time order) up to
    `until`, in the order the outputs would get them. A note started by `until` keeps
    its own end; none starts later. A panic's note-offs carry the panic's time."""
    order = itertools.count()
    queued: list[tuple[float, int, Note]] = []
    out: list[Note] = []

    def queue(notes: list[Note]) -> None:
        for note in notes:
            heapq.heappush(queued, (note.time, next(order), note))

    def dispatch(now: float, *, including: bool = True) -> None:
        while queued and (queued[0][0] < now or (including and queued[0][0] == now)):
            out.append(heapq.heappop(queued)[2])

    for at, event in events:
        if at > until:
            break
        queue(engine.advance(at, lookahead))
        dispatch(at, including=False)  # live, each left at its own time, before `event`
        notes = engine.handle(event, at)
        if isinstance(event, Command) and event.name == "panic":
            pending = [n for _, _, n in sorted(queued) if isinstance(n, NoteOff)]
            queued.clear()
            out.extend(dataclasses.replace(n, time=at) for n in pending)
        queue(notes)
        dispatch(at)
    queue(engine.advance(until, lookahead))
    dispatch(until)
    queue(engine.held_offs())  # what the tracks still hold, ending at its own time
    # The notes already sounding end as they would have; nothing new starts.
    sounding: Counter[tuple[str, int, int]] = Counter()
    for note in out:
        key = (note.track, note.channel, note.note)
        sounding[key] += 1 if isinstance(note, NoteOn) else -1
    for _, _, note in sorted(queued):
        key = (note.track, note.channel, note.note)
        if isinstance(note, NoteOff) and sounding[key] > 0:
            sounding[key] -= 1
            out.append(note)
    return out
