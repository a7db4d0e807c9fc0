"""The groove bed: a beat, a bass line, the chords and a pad that play from the first
second and never stop, for the callers to decorate.

A style is a small arrangement written as 16-step patterns per section. The bed plays
its parts on the installation's own tracks (the kit on the drums track, the bass line
on the bass track, …) while no caller holds them, and yields a part to the caller who
takes that track, until their loop has faded out after they leave (the bass line
fills any bar its caller leaves silent, or a muted one). The kit is the
exception: it plays on under a caller on drums until their first key, and then gives
way to the figure they chose (grooves.py), which is this beat varied and keeps its
kick on one; it comes back the moment they leave or are muted. Sections follow the
crowd, one per phrase of `PHRASE_BARS` bars (`next_section`): with nobody playing the
bed idles on its intro; once callers play it builds, then drops; a busy crowd keeps
the drop going for up to three phrases, a few players for one, and a crowd that
thins out (half as many presses as the phrase before) breaks down at once; after a
break it builds again. Every section's last bar ends on a snare fill into the next
(the build's is a bar-long roll). The operator may change the style live: the new one
takes over at the next bar, so the groove does not stumble.

On MIDI the bed's pitched parts have channels of their own (`BedVoice`), so the
operator's synth tells the bed's bass line from a caller on the bass track and can play
the whole piece, each part with its own program; a note's `track` still names the track
it stands in for, whose samples the speakers play it with. The kit keeps its track's
channel, GM's drum channel 10 by default: a GM synth plays drums only there, and a
program change on another channel would pick a melodic instrument, not a kit.

Everything here is pure and keyed by step: the same steps give the same notes.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .clock import Grid
from .events import Note, NoteOff, NoteOn
from .harmony import Harmony
from .roles import CEILING, fold, humanise, role
from .tracks import TrackSpec

STEPS: Final = 16
PHRASE_BARS: Final = 8
SECTIONS: Final = ("intro", "build", "drop", "break")
# Presses a bar, over a phrase, that make a busy crowd; and how many phrases of drop
# in a row a busy crowd and a quiet one get before a break.
BUSY_PER_BAR: Final = 4
DROPS: Final = {True: 3, False: 1}
# The swing of the pop style, and of an installation without a bed.
DEFAULT_SWING: Final = 0.1
# A pattern letter's share of its part's velocity: accent, normal, soft.
LEVELS: Final = {"X": 1.0, "x": 0.8, "o": 0.55}


@dataclass(frozen=True, slots=True)
class Hit:
    """One note of the bed at a step of the bar: `part` is the role ("kick", "bass",
    …), `tone` a chord tone (0 root, 1 third, 2 fifth) for pitched parts, `level` a
    share of the part's velocity, `length` in steps."""

    part: str
    pos: int
    tone: int
    level: float
    length: int


@dataclass(frozen=True)
class Style:
    """An arrangement: per section, the drum patterns (kick, snare, hat, open hat as
    16-letter strings), the bass line and the chord comp as (step, tone, length), and
    the swing that suits it."""

    name: str
    drums: dict[str, dict[str, str]]
    bass: dict[str, tuple[tuple[int, int, int], ...]]
    chords: dict[str, tuple[tuple[int, int], ...]]
    pad: frozenset[str]  # the sections the pad holds the chord in
    fill: str = "x.x.x.x.xxxxXXXX"  # a snare roll on a build's last bar
    last_beat: str = "oxxX"  # the snare on the last beat of any other section's last bar
    swing: float = DEFAULT_SWING  # how late its off-beat 16ths come (clock.Grid)


def _drums(kick: str, snare: str, hat: str, open_hat: str = "." * STEPS) -> dict[str, str]:
    return {"kick": kick, "snare": snare, "hat": hat, "open_hat": open_hat}


POP = Style(
    "pop",
    drums={
        "intro": _drums("X.......X.......", "." * 16, "..o...o...o...o."),
        "build": _drums("X.......X.x.....", "....x.......x...", "x.o.x.o.x.o.x.o."),
        "drop": _drums("X.......X.x.....", "....X.......X...", "x.x.x.x.x.x.x.x."),
        "break": _drums("X...............", "." * 16, "o.o.o.o.o.o.o.o."),
    },
    bass={
        "intro": ((0, 0, 6), (8, 0, 6)),
        "build": ((0, 0, 4), (6, 0, 2), (8, 2, 4), (14, 0, 2)),
        "drop": ((0, 0, 3), (6, 0, 2), (8, 2, 2), (10, 0, 2), (14, 1, 2)),
        "break": ((0, 0, 14),),
    },
    chords={
        "build": ((0, 6), (8, 6)),
        "drop": ((0, 3), (6, 2), (8, 3), (14, 2)),
    },
    pad=frozenset({"intro", "break", "build"}),
)

HOUSE = Style(
    "house",
    swing=0.0,  # house is straight 16ths
    drums={
        "intro": _drums("X...X...X...X...", "." * 16, "." * 16, "..o...o...o...o."),
        "build": _drums("X...X...X...X...", "....x.......x...", "x.x.x.x.x.x.x.x."),
        "drop": _drums(
            "X...X...X...X...", "....X.......X...", "x.x.x.x.x.x.x.x.", "..x...x...x...x."
        ),
        "break": _drums("X...............", "." * 16, "o.o.o.o.o.o.o.o.", "..o...o...o...o."),
    },
    bass={
        "intro": ((2, 0, 2), (10, 0, 2)),
        "build": ((2, 0, 2), (6, 0, 2), (10, 0, 2), (14, 0, 2)),
        "drop": ((2, 0, 2), (6, 0, 2), (10, 2, 2), (14, 0, 2)),
        "break": ((0, 0, 14),),
    },
    chords={
        "build": ((2, 1), (6, 1), (10, 1), (14, 1)),
        "drop": ((2, 1), (6, 1), (10, 1), (14, 1)),
    },
    pad=frozenset({"intro", "break"}),
)

HIPHOP = Style(
    "hiphop",
    swing=0.22,  # a lazy, behind-the-beat 16th
    drums={
        "intro": _drums("X.........X.....", "." * 16, "o.o.o.o.o.o.o.o."),
        "build": _drums("X......x..X.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
        "drop": _drums("X......x..X..x..", "....X.......X...", "x.x.x.x.x.x.x.x."),
        "break": _drums("X...............", "." * 16, "o...o...o...o..."),
    },
    bass={
        "intro": ((0, 0, 8),),
        "build": ((0, 0, 6), (10, 0, 4)),
        "drop": ((0, 0, 6), (10, 2, 2), (12, 0, 4)),
        "break": ((0, 0, 14),),
    },
    chords={
        "build": ((0, 8),),
        "drop": ((0, 6), (8, 6)),
    },
    pad=frozenset({"intro", "break", "build", "drop"}),
)

STYLES: Final[dict[str, Style]] = {s.name: s for s in (POP, HOUSE, HIPHOP)}
NO_BED: Final = "none"  # the style of an installation that wants its callers alone


@dataclass(frozen=True, slots=True)
class BedVoice:
    """Where a pitched part of the bed goes out on MIDI: its own channel (0–15) and the
    GM program (0–127) it is played with there."""

    part: str  # one of PITCHED_PARTS
    channel: int
    program: int


PITCHED_PARTS: Final = ("bass", "chords", "pad")
# Channels 11, 12 and 13 on a synth's panel (10–12 from zero): after the default
# tracks' 1–6 and GM's drum channel 10, with room for more tracks below them. The
# programs are the default tracks' (Synth Bass 1, Electric Piano 1, Pad 2 "warm"), so
# a GM synth plays the bed as the speakers do.
DEFAULT_VOICES: Final = (
    BedVoice("bass", 10, 38),
    BedVoice("chords", 11, 4),
    BedVoice("pad", 12, 89),
)


def style_swing(style: str) -> float:
    """The swing that suits `style` (a bed's name, or "none")."""
    chosen = STYLES.get(style)
    return chosen.swing if chosen is not None else DEFAULT_SWING


def next_section(section: str, drops: int, recent: int, before: int) -> str:
    """The section after a phrase of `section` (the `drops`-th drop in a row, if a
    drop) while someone plays, from the presses in that phrase (`recent`) and in the
    one before it (`before`): see the module's docstring."""
    if section in ("intro", "break"):
        return "build"
    if section == "build":
        return "drop"
    busy = recent >= BUSY_PER_BAR * PHRASE_BARS
    thinned = 2 * recent < before
    return "break" if thinned or drops >= DROPS[busy] else "drop"


def hits(style: Style, section: str, pos: int, last_bar: bool) -> list[Hit]:
    """The bed's hits at step `pos` (0–15) of a bar in `section`."""
    out: list[Hit] = []
    drums = style.drums[section]
    for part, pattern in drums.items():
        if part == "snare" and last_bar:
            pattern = style.fill if section == "build" else pattern[:12] + style.last_beat
        letter = pattern[pos]
        if letter in LEVELS:
            out.append(Hit(part, pos, 0, LEVELS[letter], 1))
    for at, tone, length in style.bass.get(section, ()):
        if at == pos:
            out.append(Hit("bass", pos, tone, 1.0 if pos == 0 else 0.85, length))
    for at, length in style.chords.get(section, ()):
        if at == pos:
            out.append(Hit("chords", pos, 0, 1.0 if pos in (0, 8) else 0.8, length))
    if pos == 0 and section in style.pad:
        out.append(Hit("pad", pos, 0, 1.0, STEPS))
    return out


# The bed's drum parts on the GM kit, and each part's velocity before a pattern's level.
DRUM_NOTES: Final = {"kick": 36, "snare": 38, "hat": 42, "open_hat": 46}
VELOCITY: Final = {
    "kick": 112,
    "snare": 100,
    "hat": 62,
    "open_hat": 58,
    "bass": 100,
    "chords": 72,
    "pad": 56,
}
HUMANISE: Final = 4  # ± this much velocity, the same for the same step and part


class Seat(Protocol):
    """What the bed reads of an engine's track: what it plays and whether it is taken."""

    spec: TrackSpec
    caller: str | None
    loop: list[Any]  # the caller's loop: hits with a `step`
    fading: list[Any]  # a departed caller's loop, still fading out
    last_press_step: int
    muted: bool


def _taken(track: Seat) -> bool:
    """A caller plays the track, or their loop still fades out on it."""
    return track.caller is not None or bool(track.fading)


def _plays_in_bar(track: Seat, step: int, loop_steps: int) -> bool:
    """Whether the track sounds in the bar of `step`: a press in it so far, or a hit of
    its loop (or of the loop fading out) that comes round in it. A muted track does not.
    The bed's bass fills a bar its caller leaves silent, so the groove never loses its
    floor; the chords and pad leave such a bar to the others (no pile of harmony)."""
    if track.muted:
        return False
    start = step - step % STEPS
    if track.last_press_step >= start:
        return True
    return any((hit.step - start) % loop_steps < STEPS for hit in (*track.loop, *track.fading))


class Bed:
    """The bed of one engine: its style, the tracks it plays on, the current section."""

    def __init__(
        self,
        style: Style | None,
        tracks: Sequence[Seat],
        seed: int,
        voices: Sequence[BedVoice] = DEFAULT_VOICES,
        loop_steps: int = 2 * STEPS,
    ) -> None:
        self.style = style
        self.tracks = tracks
        self.seed = seed
        self.loop_steps = loop_steps  # how long a caller's loop is
        self.parts = _part_tracks(tracks)
        # A part's MIDI channel; a part without a voice (the kit's) plays on its track's.
        self.channels = {voice.part: voice.channel for voice in voices}
        self.chosen = style  # the operator's choice, playing from the next bar on
        self.section = "intro"
        self.last_bar = False  # the current bar ends its section
        self._bar: int | None = None  # the bar `follow` last began
        self._section_start = 0  # the bar the current section's phrase began on
        self.changed_bar = 0  # the bar the section last changed on (the facade washes)
        self._drops = 0  # phrases of drop in a row
        self._presses: dict[int, int] = {}  # bar → callers' keys playing in it

    @property
    def swing(self) -> float:
        """The swing of the style playing (`DEFAULT_SWING` without a bed)."""
        return self.style.swing if self.style is not None else DEFAULT_SWING

    @property
    def name(self) -> str:
        """The style chosen (bed.STYLES' name, or "none"), as a `state` reports it."""
        return self.chosen.name if self.chosen is not None else NO_BED

    def follow(self, step: int) -> None:
        """At a bar's first step: the style chosen, and the section the bar is in
        (`_next_bar`). Once a bar, however often it is called."""
        bar, pos = divmod(step, STEPS)
        if pos == 0 and bar != self._bar:
            self._bar = bar
            self.style = self.chosen
            self._next_bar(bar)

    def notes(
        self, step: int, when: float, grid: Grid, harmony: Harmony, led: Container[str] = ()
    ) -> list[Note]:
        """The bed's notes at `step` (sounding at `when`): on the tracks no caller holds,
        and the kit on the drums track unless it is `led` by a caller's figure; the
        pitched parts on their own channels."""
        self.follow(step)
        if self.style is None:
            return []
        out: list[Note] = []
        for hit in hits(self.style, self.section, step % STEPS, self.last_bar):
            drum = DRUM_NOTES.get(hit.part)
            track = self.parts.get("drums" if drum is not None else hit.part)
            if track is None:
                continue
            if drum is not None:
                if track.spec.name in led:
                    continue
            elif _taken(track) and (
                hit.part != "bass" or _plays_in_bar(track, step, self.loop_steps)
            ):
                continue  # the bass alone fills a bar its caller leaves silent
            spec = track.spec
            varied = humanise(self.seed, step, hit.part, HUMANISE)
            velocity = max(1, min(127, round(VELOCITY[hit.part] * hit.level) + varied))
            if drum is not None:
                pitches: tuple[int, ...] = (drum,)
            else:
                ceiling = CEILING["bass" if hit.part == "bass" else "chords"]
                pitches = tuple(
                    fold(p, ceiling)
                    for p in harmony.bed_notes(hit.part, hit.tone, step, spec.octave)
                )
            channel = self.channels.get(hit.part, spec.channel)
            off_step = step + hit.length
            off = grid.time_of(off_step)
            for pitch in pitches:
                out.append(NoteOn(when, step, spec.name, channel, pitch, velocity))
                out.append(NoteOff(off, off_step, spec.name, channel, pitch))
        return out

    def pressed(self, step: int) -> None:
        """A caller's key, playing at `step`: the crowd's activity the sections follow."""
        bar = step // STEPS
        self._presses[bar] = self._presses.get(bar, 0) + 1
        if len(self._presses) > 4 * PHRASE_BARS:  # what `_next_bar` can still ask about
            for old in [b for b in self._presses if b < bar - 3 * PHRASE_BARS]:
                del self._presses[old]

    def _count(self, first: int, end: int) -> int:
        return sum(self._presses.get(bar, 0) for bar in range(first, end))

    def _next_bar(self, bar: int) -> None:
        """At a bar's first step: the section it is in. The intro starts the crowd's
        first section on a 4-bar line; then the section changes each phrase
        (`next_section`), back to the intro when nobody holds a track. The presses
        counted end a bar before the change: a key pressed later than that cannot
        still land before it, so when `advance` is called never changes the music."""
        playing = any(t.caller is not None for t in self.tracks)
        start, section_before = self._section_start, self.section
        if self.section == "intro":
            if playing and bar % 4 == 0:
                self.section, self._section_start, self._drops = "build", bar, 0
        elif (bar - start) % PHRASE_BARS == 0:
            if not playing:
                self.section = "intro"
            else:
                recent = self._count(bar - PHRASE_BARS - 1, bar - 1)
                before = self._count(bar - 2 * PHRASE_BARS - 1, bar - PHRASE_BARS - 1)
                self.section = next_section(self.section, self._drops, recent, before)
                self._drops = self._drops + 1 if self.section == "drop" else 0
            self._section_start = bar
        if self.section != section_before:
            self.changed_bar = bar
        phrase_bar = (bar - self._section_start) % PHRASE_BARS
        self.last_bar = self.section != "intro" and phrase_bar == PHRASE_BARS - 1


def _part_tracks(tracks: Sequence[Seat]) -> dict[str, Seat]:
    """The tracks the bed plays its parts on, by their role (roles.py): the kit's
    drums, the bass, the chords and the pad; the first of each."""
    found: dict[str, Seat] = {}
    for track in tracks:
        part = role(track.spec)
        if part == "melody" or (part == "drums" and track.spec.samples != "kit"):
            continue
        found.setdefault(part, track)
    return found
