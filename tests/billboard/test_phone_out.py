"""The phone mixes as one more output of the show: fed by the real scheduler (its
thread on simulated time, in lockstep), rendered on the engine clock's 20 ms grid,
each frame one bundle; the cues from the engine's own updates, to their caller only.
No socket and no real clock: `render_due` is asked with the simulated time."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from billboard.engine import Digit, Engine, EngineConfig, Join, Leave, NoteOff, NoteOn
from billboard.engine.events import Assign, EngineUpdate, Left
from billboard.engine.scene import Scene
from billboard.phone_cues import CUE_SOUNDS, FIGURES
from billboard.phone_mix import FRAME, RATE, PhoneMixer, PhoneSounds
from billboard.phone_out import CATCH_UP_FRAMES, GRACE_S, CueWatch, PhoneOut
from billboard.samples import SampleSet, load_sample_sets
from billboard.scheduler import Scheduler
from relay.phone_audio import Bundle, parse_bundle
from tests.support.phone import (
    LEAD_AND_PLUCK,
    apart,
    balance_db,
    decode,
    level_at,
    midi_hz,
    noise_floor,
)

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
FRAME_S = FRAME / RATE
CATCH_UP_S = 30.0  # real time the scheduler's thread may take for one step, on a busy box


@pytest.fixture(scope="module")
def sets() -> dict[str, SampleSet]:
    return load_sample_sets(SOUNDS)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Notes:
    """The notes the scheduler hands the speakers, beside the phone."""

    name = "speakers"

    def __init__(self) -> None:
        self.ons: list[NoteOn] = []

    def note_on(self, note: NoteOn) -> None:
        self.ons.append(note)

    def note_off(self, note: NoteOff) -> None:
        pass

    def panic(self) -> None:
        pass

    def close(self) -> None:
        pass


class PhoneShow:
    """The real scheduler on its thread and a `PhoneOut` beside the speakers, driven in
    lockstep through simulated time: each 20 ms step waits for the scheduler's scene at
    the new time (all notes due by then handed out), then renders the frames due."""

    def __init__(self, sets: dict[str, SampleSet], **config: object) -> None:
        settings: dict[str, object] = {"style": "none", "tracks": LEAD_AND_PLUCK}
        settings.update(config)
        self.clock = Clock()
        self.bundles: list[Bundle] = []
        self.speakers = Notes()
        engine = Engine(EngineConfig(**settings), start=self.clock.now)  # type: ignore[arg-type]
        tracks = engine.config.tracks
        self.phone = PhoneOut(
            lambda: PhoneMixer(sets, tracks),
            lambda data: self.bundles.append(parse_bundle(data)),
            self.holders,
            clock=self.clock,
        )
        self._drawn = threading.Condition()
        self._drawn_at = -math.inf
        self.scheduler = Scheduler(
            engine,
            [self.speakers, self.phone],
            clock=self.clock,
            on_updates=self._updates,
            on_scene=self._scene,
        )
        self.scheduler.start()
        self.phone.render_due(self.clock.now)  # the mixer made
        self.run_for(FRAME_S)

    def holders(self) -> dict[str, str]:
        return {t.caller: t.name for t in self.scheduler.scene.tracks if t.caller is not None}

    def _updates(self, updates: list[EngineUpdate]) -> None:
        self.phone.updates(updates)

    def _scene(self, scene: Scene) -> None:
        with self._drawn:
            self._drawn_at = scene.time
            self._drawn.notify_all()

    def submit(self, event: Join | Digit | Leave) -> None:
        self.scheduler.submit(event, at=self.clock.now)
        if isinstance(event, Leave):  # as Show does with every event it applies
            self.phone.forget(event.caller)

    def run_for(self, seconds: float) -> None:
        for _ in range(max(1, round(seconds / FRAME_S))):
            self.clock.now += FRAME_S
            with self._drawn:
                caught_up = self._drawn.wait_for(
                    lambda: self._drawn_at >= self.clock.now, timeout=CATCH_UP_S
                )
            assert caught_up, f"the scheduler's thread did not reach t={self.clock.now}"
            self.phone.render_due(self.clock.now)

    def stop(self) -> None:
        self.scheduler.stop()

    def heard(self, caller: str, since: int = 0) -> np.ndarray:
        """What `caller` hears in the bundles from the `since`-th on."""
        return decode([b.for_caller(caller) for b in self.bundles[since:]])


def test_notes_a_caller_plays_reach_their_frames_with_their_part_in_their_own_mix(
    sets: dict[str, SampleSet],
) -> None:
    show = PhoneShow(sets, bpm=120)
    show.submit(Join("c-lead"))
    show.submit(Join("c-pluck"))
    show.run_for(0.6)  # past the track cues
    start = len(show.bundles)
    for n in range(8):
        show.submit(Digit("c-lead", "1357"[n % 4]))
        show.submit(Digit("c-pluck", "3"))
        show.run_for(0.25)
    show.run_for(0.5)
    show.stop()

    # One bundle a frame, each naming the holders with their track's mix.
    assert [b.seq for b in show.bundles] == list(range(len(show.bundles)))
    last = show.bundles[-1]
    assert len(last.mixes) == 3 and set(last.callers) == {"c-lead", "c-pluck"}
    assert last.callers["c-lead"] != last.callers["c-pluck"]
    played = {n.note for n in show.speakers.ons if n.track == "lead"}
    assert len(played) >= 3
    own, street = show.heard("c-lead", start), show.heard("c-street", start)
    floor = noise_floor(own)
    for note in played:  # every note the caller played is in what they hear
        assert level_at(own, midi_hz(note)) > 1000 * floor, note
    # Their own part louder than in the street's mix: the lead against the pluck.
    pluck = {n.note for n in show.speakers.ons if n.track == "pluck"}
    lead_hz, pluck_hz = apart(played, pluck), apart(pluck, played)
    assert lead_hz and pluck_hz
    louder = balance_db(own, lead_hz, pluck_hz) - balance_db(street, lead_hz, pluck_hz)
    assert 5 < louder < 7, louder  # 6 dB, the mixer's default


def cue_heard(x: np.ndarray, kind: str) -> bool:
    """Whether `kind`'s cue is in `x`, whole: its normalised cross-correlation with
    some stretch of `x` is near 1 (μ-law's steps aside)."""
    cue = CUE_SOUNDS[kind].astype(np.float64)  # type: ignore[index]
    if len(x) < len(cue):
        return False
    dots = np.correlate(x, cue, mode="valid")
    energy = np.convolve(x**2, np.ones(len(cue)), mode="valid")
    score = dots / np.sqrt(np.maximum(energy, 1e-12) * float(np.dot(cue, cue)))
    return bool(np.max(score) > 0.95)


def test_cues_reach_their_caller_only_as_the_engine_seats_moves_and_frees_them(
    sets: dict[str, SampleSet],
) -> None:
    """One track, callers queueing: the first hears ``track``; the second, first in
    line, ``front``; the third, second in line, nothing; when the first hangs up the
    second gets the track (``track``) and the third reaches the front (``front``); when
    the second's turn runs out, ``lost`` for them and ``track`` for the third. Nobody
    else hears any of it: with no notes, every other mix stays silent."""
    lead = tuple(t for t in LEAD_AND_PLUCK if t.name == "lead")
    show = PhoneShow(sets, tracks=lead, turn_s=2.0, idle_s=60.0)
    callers = ("c-a", "c-b", "c-c", "c-street")
    heard: list[dict[str, set[str]]] = []

    def moment(action: Callable[[], None], seconds: float = 0.6) -> None:
        since = len(show.bundles)
        action()
        show.run_for(seconds)  # the longest cue is 0.44 s
        heard.append(
            {c: {k for k in FIGURES if cue_heard(show.heard(c, since), k)} for c in callers}
        )

    moment(lambda: show.submit(Join("c-a")))
    moment(lambda: (show.submit(Join("c-b")), show.submit(Join("c-c")))[0])
    moment(lambda: show.submit(Leave("c-a")))
    # The second's turn (2 s) runs out while the third waits.
    moment(lambda: show.submit(Digit("c-b", "1")), seconds=2.5)
    show.stop()
    nothing: set[str] = set()
    assert heard[0] == {"c-a": {"track"}, "c-b": nothing, "c-c": nothing, "c-street": nothing}
    assert heard[1] == {"c-a": nothing, "c-b": {"front"}, "c-c": nothing, "c-street": nothing}
    assert heard[2] == {"c-a": nothing, "c-b": {"track"}, "c-c": {"front"}, "c-street": nothing}
    assert heard[3] == {"c-a": nothing, "c-b": {"lost"}, "c-c": {"track"}, "c-street": nothing}
    assert all(b.callers.keys() <= {"c-a", "c-b", "c-c"} for b in show.bundles)


def test_the_cue_watch_tells_each_change_once() -> None:
    watch = CueWatch()
    updates: list[object] = [
        Assign("c-a", "lead", "#d55e00", 0),
        Assign("c-a", "lead", "#d55e00", 0),  # a keypad joining again: no news
        Assign("c-b", None, None, 2),
        Assign("c-b", None, None, 1),  # moved up to the front
        Assign("c-b", None, None, 1),  # retold
        Left("c-a", "idle"),
        Assign("c-b", "lead", "#d55e00", 0),
        Left("c-x", "full"),  # turned away from a full line: never had a turn
        Left("c-b", "kicked", 120.0),
    ]
    cues = watch.updates(updates)
    assert cues == [
        ("c-a", "track"),
        ("c-b", "front"),
        ("c-a", "lost"),
        ("c-b", "track"),
        ("c-b", "lost"),
    ]
    assert len(watch) == 0  # nobody left behind
    watch.updates([Assign("c-d", "lead", "#d55e00", 0)])
    watch.forget("c-d")  # hung up (a gateway's leave): a new call is news again
    assert watch.updates([Assign("c-d", "lead", "#d55e00", 0)]) == [("c-d", "track")]


def phone_at(
    sets: dict[str, SampleSet], start: float, sent: list[bytes], sounds: PhoneSounds
) -> PhoneOut:
    clock = Clock(start)
    out = PhoneOut(
        lambda: PhoneMixer(sets, LEAD_AND_PLUCK, sounds=sounds),
        sent.append,
        lambda: {"c-lead": "lead"},
        clock=clock,
    )
    out.render_due(start)  # the mixer made
    out.render_due(start)  # the first frame chosen: the next on the grid
    return out


def test_frames_lie_on_the_engine_clocks_grid_so_the_same_notes_give_the_same_bytes(
    sets: dict[str, SampleSet],
) -> None:
    """Two outputs started at different moments (one off the 20 ms grid), fed the same
    notes: their frames of the same 20 ms are the same bytes."""
    sounds = PhoneSounds()
    first, second = [], []  # type: ignore[var-annotated]
    early, late = phone_at(sets, 1000.0, first, sounds), phone_at(sets, 1000.213, second, sounds)
    assert late.next_due() == pytest.approx(1000.24 + GRACE_S)  # its first frame: 1000.22
    for n in range(6):
        note = 76 + 2 * n
        for out in (early, late):
            out.note_on(NoteOn(1000.5 + 0.1 * n, 0, "lead", 2, note, 100))
            out.note_off(NoteOff(1000.55 + 0.1 * n, 0, "lead", 2, note))
    for out in (early, late):
        now = 1000.0
        while now < 1002.0:  # asked at uneven moments: only the clock's grid counts
            now += 0.013
            out.render_due(now)
    offset = round(0.22 / FRAME_S)  # the late one's frames begin 11 frames later
    assert len(first) == len(second) + offset
    early_mixes = [parse_bundle(b).mixes for b in first[offset:]]
    late_mixes = [parse_bundle(b).mixes for b in second]
    assert late_mixes == early_mixes  # (their seq numbers differ: each counts its own)
    assert any(m != late_mixes[0] for m in late_mixes)  # the notes are in there


def test_a_stalled_machine_skips_the_frames_it_missed_rather_than_bursting_them(
    sets: dict[str, SampleSet],
) -> None:
    sent: list[bytes] = []
    out = phone_at(sets, 1000.0, sent, PhoneSounds())
    on_time = sum(out.render_due(1000.0 + 0.02 * n) for n in range(1, 26))
    assert on_time == 24 and out.skipped == 0  # a frame a turn: every frame due
    rendered = out.render_due(1002.5)  # two seconds with no turn
    assert rendered <= CATCH_UP_FRAMES + 1 and out.skipped >= 95
    seqs = [parse_bundle(b).seq for b in sent]
    # The frames skipped are counted in the seq: the relay sees the gap.
    assert seqs == sorted(seqs) and seqs[-1] == 24 + out.skipped + rendered - 1


def test_while_nobody_takes_the_bundles_nothing_is_rendered_and_the_gap_is_let_go(
    sets: dict[str, SampleSet],
) -> None:
    """The link down: no frame rendered and nothing kept of the notes meanwhile; back,
    the frames go on from the clock's grid, as those of an output that never stopped
    and never heard the gap's notes."""
    sent: list[bytes] = []
    wanted = [True]
    sounds = PhoneSounds()
    out = PhoneOut(
        lambda: PhoneMixer(sets, LEAD_AND_PLUCK, sounds=sounds),
        sent.append,
        lambda: {"c-lead": "lead"},
        clock=Clock(),
        wanted=lambda: wanted[0],
    )
    reference: list[bytes] = []
    steady = phone_at(sets, 1000.0, reference, sounds)
    out.render_due(1000.0)
    out.render_due(1000.0)
    frames = 0

    def play(t: float, note: int, into: tuple[PhoneOut, ...]) -> None:
        for o in into:
            o.note_on(NoteOn(t, 0, "lead", 2, note, 100))
            o.note_off(NoteOff(t + 0.05, 0, "lead", 2, note))

    for n in range(1, 101):  # two seconds, a turn every 20 ms
        now = 1000.0 + 0.02 * n
        wanted[0] = not 25 <= n < 50  # the link away for half a second
        if n in (10, 60):
            play(now, 72 + n % 7, (out, steady))  # heard by both
        if n == 30:
            play(now, 84, (out,))  # in the gap: let go
        frames += out.render_due(now)
        steady.render_due(now)
    assert out.idle == 25 and out.frames == frames == 99 - 25  # 99 frames were due
    assert len(sent) == out.frames and not out._inbox
    ours = [parse_bundle(b) for b in sent]
    theirs = {parse_bundle(b).seq: parse_bundle(b).mixes for b in reference}
    # Frame k is due in the turn k + 2: the turns of the gap were those of frames 23-47.
    assert [b.seq for b in ours] == [s for s in range(99) if not 23 <= s < 48]
    # After the gap, the same bytes as the output that never stopped nor heard it.
    assert all(b.mixes == theirs[b.seq] for b in ours if b.seq >= 48)
