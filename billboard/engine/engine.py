"""The music engine: callers → tracks → notes, and a scene of the facade.

Pure and deterministic: events and the time come in as arguments, notes (stamped with
the time they must sound) and caller updates come out. No clock is read here, and the
only variation (humanised velocities, the shape of a drum fill) is keyed by the seed
and the step.

The adapters drive it like this::

    notes = engine.handle(event, now)        # a press: its note on the next step
    notes += engine.advance(now, horizon)    # timeouts at `now`; loop notes up to now+horizon
    updates = engine.take_updates()          # Assign / Left to publish on CHANNEL:state
    scene = engine.scene(now)                # for the screen and the `state` event
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from . import grooves, roles
from .bans import Bans
from .bed import DEFAULT_VOICES, NO_BED, STYLES, Bed, BedVoice, style_swing
from .clock import Grid
from .events import (
    Assign,
    Command,
    Digit,
    EngineUpdate,
    InputEvent,
    Join,
    Leave,
    Left,
    Note,
    NoteOff,
    NoteOn,
    Notice,
)
from .harmony import SCALES, STEPS_PER_BAR, Harmony, digit_index, parse_key
from .held import Held
from .lighting import LIGHT_HALF_LIFE_S, Lighting
from .line import WaitingLine
from .scene import Activity, Facade, Scene, TrackView, decay
from .seats import Caller, Hit, Track, next_in_loop
from .tracks import DEFAULT_TRACKS, TrackSpec

log = logging.getLogger("billboard.engine")


# Telling waiting callers their place. Every `Assign` with `line` > 0 holds the
# caller's true place when it is made. When the line moves, only callers whose place
# changed are told, once per event or `advance` however many left, and only those now
# within the first RETOLD_PLACES: that many messages at most, however long the line
# (and a crowd of fake callers timing out together costs no more). A caller further
# back keeps the place they were last told until they move into that window or join
# again (a keypad's reconnect); since the line only ever moves forward (newcomers join
# at the back), that place is never sooner than the truth.
RETOLD_PLACES: Final = 50
SHOWN_WAITING: Final = 20  # waiting callers in the scene and its `state` event
# A caller turned away from a full line hears it at each join, but a caller who only
# presses keys (a digit implies a join) hears it at most this often, not once per key.
FULL_RETELL_S: Final = 30.0
FULL_TOLD_MAX: Final = 4096  # callers remembered as told; the oldest may hear it again


SEAT_ORDER: Final = ("lead", "bass", "drums", "chords", "pluck", "bells", "pad", "percussion")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    tracks: tuple[TrackSpec, ...] = DEFAULT_TRACKS
    bpm: float = 112.0
    swing: float | None = None  # None: the style's (bed.Style.swing), following it live
    key: str = "C"
    scale: str = "major"
    progression: tuple[int, ...] = (0, 4, 5, 3)  # I–V–vi–IV
    bars_per_chord: int = 1
    idle_s: float = 30.0  # a caller silent this long frees the track
    turn_s: float = 180.0  # a turn this long ends when others wait
    kick_ban_s: float = 120.0  # a kicked caller is refused this long
    line_max: int = 200  # callers who may wait for a track; more are turned away
    line_idle_s: float = 600.0  # a waiting caller silent this long leaves the line
    grace_s: float = 0.030  # a press this soon after a step plays at once
    loop_bars: int = 2  # each track loops what its caller played in the last bars
    fade_bars: int = 4  # a departed caller's loop fades over this many bars
    attract_after_s: float = 20.0  # nobody playing this long → the screen invites
    facade: Facade = field(default_factory=Facade)
    seed: int = 2010
    humanise_s: float = 0.0  # notes on their step sound up to this late (roles.nudge)
    style: str = "pop"  # the groove bed's arrangement (bed.STYLES), or "none": no bed
    bed_voices: tuple[BedVoice, ...] = DEFAULT_VOICES  # the bed's own MIDI channels
    # Which free track a newcomer takes first: a melodic part over the running beat,
    # then the bed's parts; tracks not named here come after, in their own order.
    seat_order: tuple[str, ...] = SEAT_ORDER


class Engine:
    """Callers, tracks and the grid; see the module docstring for the driving loop."""

    def __init__(self, config: EngineConfig | None = None, start: float = 0.0) -> None:
        self.config = config = config or EngineConfig()
        if not config.tracks:
            raise ValueError("an installation needs at least one track")
        swing = config.swing if config.swing is not None else style_swing(config.style)
        self.grid = Grid(config.bpm, swing, anchor_time=start, anchor_step=0)
        self.harmony = Harmony(
            parse_key(config.key), config.scale, config.progression, config.bars_per_chord
        )
        if config.scale not in SCALES:
            raise ValueError(f"unknown scale {config.scale!r}")
        if config.style not in (*STYLES, NO_BED):
            raise ValueError(f"unknown style {config.style!r}: one of {', '.join(STYLES)}, none")
        self.tracks = [Track(spec, i) for i, spec in enumerate(config.tracks)]
        rank = {name: i for i, name in enumerate(config.seat_order)}
        self._seats = sorted(self.tracks, key=lambda t: (rank.get(t.spec.name, len(rank)), t.index))
        self.bed = Bed(
            STYLES.get(config.style),
            self.tracks,
            config.seed,
            config.bed_voices,
            loop_steps=config.loop_bars * STEPS_PER_BAR,
        )
        self._roles = [roles.role(t.spec) for t in self.tracks]
        self._role_of = {t.spec.name: r for t, r in zip(self.tracks, self._roles, strict=True)}
        self.callers: dict[str, Caller] = {}
        self.line = WaitingLine()
        # The waiting callers again, least recently active first: events come in time
        # order, so moving a caller to the back when they press keeps it sorted, and
        # only the front can have waited past `line_idle_s`.
        self._quiet: OrderedDict[str, None] = OrderedDict()
        self._told_full: OrderedDict[str, float] = OrderedDict()  # caller → when, oldest first
        self._moved_from: int | None = None  # the line moved up from this place on
        self.bans = Bans()
        self.paused = False
        self.loop_steps = config.loop_bars * STEPS_PER_BAR
        self.fade_steps = max(1, config.fade_bars * STEPS_PER_BAR)
        self.rendered = self.grid.step_at(start)  # loop notes emitted up to this step
        self._held = Held(lambda step: self.grid.time_of(step))  # pitched tracks' notes
        self.last_play = start - config.attract_after_s  # attract from the start
        self._updates: list[EngineUpdate] = []
        self._lighting = Lighting(config.facade, self.tracks)
        self._seed = config.seed

    # -- events in ------------------------------------------------------------------

    def handle(self, event: InputEvent, now: float) -> list[Note]:
        """Apply one input event at time `now`; returns the notes a press makes (and a
        panic's note-offs for what the tracks held)."""
        notes: list[Note] = []
        if isinstance(event, Digit):
            notes = self._digit(event, now)
        elif isinstance(event, Join):
            self._join(event.caller, event.source, event.display, event.nick, now)
        elif isinstance(event, Leave):
            self._remove(event.caller, now, reason=None)
        elif isinstance(event, Command):
            if event.name == "panic":  # what the tracks hold ends now, with the rest
                notes = self._held.release(now, self.grid.step_at(now))
            self._command(event, now)
        self._retell()
        return notes

    def held_offs(self) -> list[Note]:
        """The note-offs of every note the tracks still hold, at their own times, and
        they are held no more: for a show that stops (every note ends) or a session
        played offline to its end (each ends as it would have)."""
        return self._held.due(2**62)

    def take_updates(self) -> list[EngineUpdate]:
        """Assign / Left events (and an undone kick's Notice) since the last call, in order."""
        updates, self._updates = self._updates, []
        return updates

    def _join(
        self,
        caller: str,
        source: str,
        display: str | None,
        nick: str | None,
        now: float,
        explicit: bool = True,
    ) -> Caller | None:
        ban_left = self.bans.left(caller, now)
        if ban_left is not None:
            if explicit:  # told once per join, not once per key pressed, and how long
                self._updates.append(Left(caller, "kicked", ban_left))
            return None
        known = self.callers.get(caller)
        if known is not None:  # a second join (a reconnecting keypad): refresh only
            known.display = display or known.display
            known.nick = nick or known.nick
            self._active(known, now)
            self._tell(known)
            return known
        free = None if self.paused else self._free_track()
        if free is None and len(self.line) >= self.config.line_max:
            self._turn_away(caller, now, explicit)
            return None
        entry = Caller(caller, source, display, nick, joined=now, last_active=now)
        self.callers[caller] = entry
        self._told_full.pop(caller, None)  # turned away again later, they hear it again
        if free is None:
            self.line.append(caller)
            self._quiet[caller] = None
            self._tell(entry)
        else:
            self._seat(entry, free, now)
        return entry

    def _turn_away(self, caller: str, now: float, explicit: bool) -> None:
        """The line is full: the caller is not kept, and is told so (see FULL_RETELL_S)."""
        told = self._told_full
        while told:  # oldest first: forget those told long enough ago
            first, when = next(iter(told.items()))
            if now - when < FULL_RETELL_S:
                break
            del told[first]
        if caller in told and not explicit:
            return
        told[caller] = now
        told.move_to_end(caller)
        if len(told) > FULL_TOLD_MAX:
            told.popitem(last=False)
        self._updates.append(Left(caller, "full"))

    def _active(self, caller: Caller, now: float) -> None:
        caller.last_active = now
        if caller.track is None:
            self._quiet.move_to_end(caller.caller)

    def _free_track(self) -> Track | None:
        return next((t for t in self._seats if t.caller is None), None)

    def _seat(self, caller: Caller, track: Track, now: float) -> None:
        caller.track = track.index
        caller.since = caller.last_active = now
        caller.last_press = None  # activity counts on this track only
        caller.presses.clear()
        track.caller = caller.caller
        track.loop = []
        track.shift = 0
        track.groove = grooves.Groove()
        track.muted = False
        self._tell(caller)

    def _tell(self, caller: Caller) -> None:
        if caller.track is not None:
            spec = self.tracks[caller.track].spec
            self._updates.append(Assign(caller.caller, spec.name, spec.color, 0))
        else:
            self._updates.append(Assign(caller.caller, None, None, self.line.place(caller.caller)))

    def _remove(self, caller: str, now: float, reason: str | None, step: int | None = None) -> None:
        """A caller goes (hung up, or freed for `reason`): their track's loop fades,
        the next in line takes it, and everyone behind moves up."""
        entry = self.callers.pop(caller, None)
        if entry is None:
            return
        if reason is not None:
            ban = self.bans.left(caller, now) if reason == "kicked" else None
            self._updates.append(Left(caller, reason, ban))
        if entry.track is None:
            self._line_moved(self.line.place(caller))
            self.line.remove(caller)
            del self._quiet[caller]
            return
        track = self.tracks[entry.track]
        track.fading = track.loop
        track.fade_from = self.grid.step_at(now) if step is None else step
        track.loop = []
        # A figure fades out like a loop, but where the bed plays the kit it takes over.
        fade = self.bed.chosen is None or self.bed.parts.get("drums") is not track
        track.groove = track.groove.left(track.fade_from, fade)
        track.caller = None
        self._fill_free_tracks(now)

    def _fill_free_tracks(self, now: float) -> None:
        if self.paused:
            return
        moved = False
        while self.line:
            track = self._free_track()
            if track is None:
                break
            nxt = self.callers[self.line.pop_front()]
            del self._quiet[nxt.caller]
            self._seat(nxt, track, now)
            moved = True
        if moved:
            self._line_moved(1)

    def _line_moved(self, place: int) -> None:
        """Everyone from `place` on has moved up; they are told by `_retell`."""
        if self._moved_from is None or place < self._moved_from:
            self._moved_from = place

    def _retell(self) -> None:
        """Tell the callers who moved up their new place, as far as RETOLD_PLACES (the
        rule is beside it). Called once at the end of each event and `advance`."""
        if self._moved_from is None:
            return
        front = self.line.first(RETOLD_PLACES)
        for place in range(self._moved_from, len(front) + 1):
            self._updates.append(Assign(front[place - 1], None, None, place))
        self._moved_from = None

    # -- presses --------------------------------------------------------------------

    def _digit(self, event: Digit, now: float) -> list[Note]:
        entry = self.callers.get(event.caller)
        if entry is None:  # a digit from a caller never seen implies a join
            entry = self._join(event.caller, event.source, None, None, now, explicit=False)
            if entry is None:
                return []
        self._active(entry, now)
        if entry.track is None:
            return []
        entry.pressed(now)
        track = self.tracks[entry.track]
        spec = track.spec
        # Quantise: the next step, unless the press is within grace of the last one.
        last = self.grid.step_at(now)
        if now - self.grid.time_of(last) <= self.config.grace_s:
            step, when = last, now
        else:
            step, when = last + 1, self.grid.time_of(last + 1)
        self.bed.pressed(step)
        if spec.mode == "drums":  # a figure, a fill or an accent (grooves.py), heard at once
            self.last_play = now
            drum = track.groove.press(event.digit, step, self.rendered + 1, spec.samples)
            velocity = 127 if event.digit == "*" else spec.velocity
            return self._humanised(
                self._sound(track, Hit(step, drum, 0, velocity), step, when), now
            )
        index = digit_index(event.digit)
        if index is None:  # `*` and `#`: an octave down, up
            track.shift = max(-1, min(1, track.shift + (-1 if event.digit == "*" else 1)))
            return []
        played = roles.quantise(step, self._roles[track.index])
        if played != step:  # a bass waits for the next 8th
            step, when = played, self.grid.time_of(played)
        hit = Hit(step, index, track.shift, spec.velocity)
        self._record(track, hit)
        self.last_play = now
        return self._humanised(self._sound(track, hit, step, when), now)

    def _record(self, track: Track, hit: Hit) -> None:
        track.last_press_step = hit.step
        # The loop is what the caller played in the last `loop_bars` bars.
        # A new press takes the place of the oldest beyond its role's density (per
        # step, per bar): the loop stays a phrase, not a pile.
        track_role = self._roles[track.index]
        oldest = hit.step - self.loop_steps
        loop = [h for h in track.loop if h.step > oldest]
        same = [h for h in loop if h.step == hit.step]
        if len(same) >= roles.PER_STEP[track_role]:
            loop.remove(same[0])
        bar = hit.step // STEPS_PER_BAR
        in_bar = [h for h in loop if h.step // STEPS_PER_BAR == bar]
        if len(in_bar) >= roles.PER_BAR[track_role]:
            loop.remove(in_bar[0])
        loop.append(hit)
        track.loop = loop

    def _sound(
        self,
        track: Track,
        hit: Hit,
        step: int,
        when: float,
        scale: float = 1.0,
        until: int | None = None,
    ) -> list[Note]:
        """The notes of `hit` at `step`; a loop's note ends `until` steps on at the
        latest, where the loop's next note starts (a phrase, not a cluster)."""
        if track.muted:
            return []
        spec = track.spec
        track_role = self._roles[track.index]
        notes = self.harmony.notes_for(spec, hit.index, step, hit.shift)
        if track_role == "melody":
            chord = self.harmony.bed_notes("chords", 0, step, spec.octave)
            notes = tuple(roles.consonant(n, chord, step) for n in notes)
        ceiling = roles.CEILING[track_role]
        notes = tuple(dict.fromkeys(roles.fold(n, ceiling) for n in notes))
        base = max(1, min(127, round(hit.velocity * scale)))
        velocity = roles.velocity(base, step, spec.name, self._seed)
        off_step = roles.end_step(step, spec.length, track_role, self.harmony.bars_per_chord)
        if until is not None and track_role != "drums":
            off_step = min(off_step, step + until)
        self._lighting.light(track, notes[0], step, when)
        if track_role != "drums":  # one line a track: see held.py
            args = (velocity, step, when, off_step, self.rendered)
            return self._held.start(spec.name, spec.channel, notes, *args)
        off_time = self.grid.time_of(off_step)
        out: list[Note] = []
        for note in notes:
            out.append(NoteOn(when, step, spec.name, spec.channel, note, velocity))
            out.append(NoteOff(off_time, off_step, spec.name, spec.channel, note))
        return out

    # -- time -----------------------------------------------------------------------

    def advance(self, now: float, horizon: float = 0.0) -> list[Note]:
        """Render every step that sounds by `now + horizon`: the loops, fills and the
        groove bed, after freeing callers whose idle or turn limit falls before
        that step. Tied to steps, not to when this is called, so the same events at
        the same times give the same notes however often the adapters call it (the
        adapters always call it with the same `horizon`)."""
        notes: list[Note] = []
        target = self.grid.step_at(now + horizon)
        while self.rendered < target:
            step = self.rendered = self.rendered + 1
            self._timeouts(self.grid.time_of(step), step)
            notes.extend(self._render_step(step))
        self._retell()
        return notes

    def _timeouts(self, at: float, step: int) -> None:
        """Free the callers whose limits fall by `at`: waiting callers first, so a track
        freed here goes to someone still there. Costs the number of tracks plus those
        who leave, not the size of the crowd."""
        cfg = self.config
        while self._quiet:
            waiting = self.callers[next(iter(self._quiet))]
            if at - waiting.last_active < cfg.line_idle_s:
                break
            self._remove(waiting.caller, at, "idle", step)
        for caller in [t.caller for t in self.tracks if t.caller is not None]:
            entry = self.callers[caller]
            if at - entry.last_active >= cfg.idle_s:
                self._remove(caller, at, "idle", step)
            elif self.line and at - entry.since >= cfg.turn_s:
                self._remove(caller, at, "turn", step)
        self.bans.expire(at)

    def _render_step(self, step: int) -> list[Note]:
        when = self.grid.time_of(step)
        self.bed.follow(step)  # the section the figures follow, too
        if self.config.swing is None:  # a style chosen live brings its swing, at a bar
            self.grid.swing = self.bed.swing
        notes: list[Note] = self._held.due(step)
        length = self.loop_steps
        for track in self.tracks:
            for hit in track.loop:
                if hit.step < step and (step - hit.step) % length == 0:
                    until = next_in_loop(track.loop, hit, length)
                    notes.extend(self._sound(track, hit, step, when, until=until))
            if track.fading:
                age = step - track.fade_from
                if age >= self.fade_steps:
                    track.fading = []
                else:
                    scale = 1.0 - age / self.fade_steps
                    for hit in track.fading:
                        if hit.step < step and (step - hit.step) % length == 0:
                            until = next_in_loop(track.fading, hit, length)
                            notes.extend(self._sound(track, hit, step, when, scale, until))
            if track.spec.mode == "drums":
                notes.extend(self._figure(track, step, when))
        led = [t.spec.name for t in self.tracks if t.leads(step)]
        bed_notes = self.bed.notes(step, when, self.grid, self.harmony, led)
        self._lighting.bed(bed_notes, step, when)
        notes.extend(bed_notes)
        return self._humanised(notes, when - 1.0)

    def _humanised(self, notes: list[Note], after: float) -> list[Note]:
        """`notes` with their timing humanised (roles.humanised) past `after`."""
        most = self.config.humanise_s
        return roles.humanised(notes, self._seed, self._role_of, most, after)

    def _figure(self, track: Track, step: int, when: float) -> list[Note]:
        """One step of a drums track's figure (grooves.py), fading once its caller left."""
        groove, bed, scale = track.groove, self.bed, 1.0
        if groove.fade_from is not None:
            age = step - groove.fade_from
            if age >= self.fade_steps:
                track.groove = grooves.Groove()
                return []
            scale = 1.0 - age / self.fade_steps
        spec = track.spec
        hits = groove.hits(step, spec.samples, bed.style, bed.section, bed.last_bar, self._seed)
        if track.muted or not hits:
            return []
        self._lighting.light(track, hits[0][0], step, when)
        off = self.grid.time_of(step + 1)
        return grooves.notes(spec, hits, step, when, off, self._seed, scale)

    def attract(self, now: float) -> bool:
        """Nobody on a track, nothing fading, and no press for a while."""
        return now - self.last_play >= self.config.attract_after_s and all(
            t.caller is None and not t.fading and t.groove.fade_from is None for t in self.tracks
        )

    # -- operator commands ----------------------------------------------------------

    def _command(self, command: Command, now: float) -> None:
        name, args = command.name, command.args
        try:
            if name == "kick":
                caller = str(args["caller"])
                if (entry := self.callers.get(caller)) is not None:
                    shown = entry.nick or entry.display
                    self.bans.kick(caller, shown, now + self.config.kick_ban_s)
                    self._remove(caller, now, "kicked")
            elif name == "unban":  # a kick undone: the caller may play again at once
                if self.bans.lift(str(args["caller"])):
                    self._updates.append(Notice(str(args["caller"]), "unbanned"))
            elif name == "mute":
                entry = self.callers.get(str(args["caller"]))
                if entry is not None and entry.track is not None:
                    self.tracks[entry.track].muted = bool(args.get("on", True))
            elif name == "tempo":
                self.grid.set_bpm(float(args["bpm"]), now)
            elif name == "key":
                self.harmony = dataclasses.replace(self.harmony, key=parse_key(str(args["key"])))
            elif name == "scale":
                scale = str(args["name"])
                if scale not in SCALES:
                    raise ValueError(f"unknown scale {scale!r}")
                self.harmony = dataclasses.replace(self.harmony, scale=scale)
            elif name == "pause":
                self.paused = bool(args.get("on", True))
                if not self.paused:
                    self._fill_free_tracks(now)
            elif name == "style":
                style = str(args["name"])
                if style not in (*STYLES, NO_BED):
                    raise ValueError(f"unknown style {style!r}")
                self.bed.chosen = STYLES.get(style)  # from the next bar (Bed.follow)
            elif name == "panic":
                for track in self.tracks:
                    track.loop, track.fading, track.groove = [], [], grooves.Groove()
            # end_calls: the relay's gateways hang up; their callers' leaves free the
            # tracks, as any hang-up does, so the engine has nothing to do here.
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("ignored command %s: %s", name, exc)

    # -- the scene ------------------------------------------------------------------

    def _activity(self, entry: Caller, now: float) -> Activity:
        """Whom to kick, in figures: presses a minute, seconds since the last press, and
        (while others wait) seconds left in the turn (`_timeouts` ends it then)."""
        last = None if entry.last_press is None else max(0.0, now - entry.last_press)
        left = max(0.0, entry.since + self.config.turn_s - now) if self.line else None
        return Activity(entry.presses_per_minute(now), last, left)

    def scene(self, now: float) -> Scene:
        """A snapshot for the screen and the `state` event."""
        shown, step = self.line.first(SHOWN_WAITING), self.grid.step_at(now)
        views: list[TrackView] = []
        regions = self._lighting.regions()
        bed, bars = self.bed, range(0, self.loop_steps, STEPS_PER_BAR)
        for track in self.tracks:
            entry = self.callers.get(track.caller) if track.caller else None
            hits = track.loop or track.fading  # and a drummer's figure, in every bar
            shown_steps = {h.step % self.loop_steps for h in hits}
            figure = track.groove.pattern(step, track.spec.samples, bed.style, bed.section)
            shown_steps.update(p + b for p in figure for b in bars)
            views.append(
                TrackView(
                    name=track.spec.name,
                    color=track.spec.color,
                    caller=track.caller,
                    display=(entry.nick or entry.display) if entry else None,
                    muted=track.muted,
                    fading=bool(track.fading) or track.groove.fade_from is not None,
                    pattern=tuple(sorted(shown_steps)),
                    level=decay(now - track.last_note, LIGHT_HALF_LIFE_S * 2),
                    region=regions[track.index],
                    since=entry.since if entry else None,
                    activity=self._activity(entry, now) if entry else None,
                )
            )
        return Scene(
            time=now,
            step=step,
            loop_steps=self.loop_steps,
            bpm=self.grid.bpm,
            key=self.harmony.key_name,
            scale=self.harmony.scale,
            style=self.bed.name,
            facade=self.config.facade,
            tracks=tuple(views),
            line=tuple(shown),
            line_length=len(self.line),
            line_display=tuple(self.callers[c].nick or self.callers[c].display for c in shown),
            lit=self._lighting.lit(now),
            section=self.bed.section,
            section_step=self.bed.changed_bar * STEPS_PER_BAR,
            phase=min(1.0, max(0.0, (now - self.grid.time_of(step)) / self.grid.step_duration)),
            attract=self.attract(now),
            paused=self.paused,
            banned=self.bans.shown(now),
        )
