"""From a `Scene` to DMX: which fixture each window has (the patch) and the level each
of its channels gets. Pure: a scene in, one 512-slot frame per universe out.

A window's light, channel by channel (r, g, b, 0–255 from its track's colour):

    level = (channel / 255 × intensity × master) ** gamma

`gamma` turns the screen's perceptual colours and fades into the linear light a DMX
fixture makes (2.2 by default, as sRGB's). A window nobody lights glows `idle` in
`idle_color`, and a lit window never dips below that glow as its note fades. Two lights
on one window (or, with `overlap = true`, two windows on one fixture): on each channel
the brightest wins — adding them would wash every colour towards white.

Kinds: `rgb` gets (r, g, b); `rgbw` takes the white all three share out to its white
LED, (r − w, g − w, b − w, w) with w = min(r, g, b); `dimmer` gets the brightest of
the three, so a saturated blue window still lights a plain lamp fully.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..colors import rgb
from ..engine.scene import Facade, Scene
from .settings import KINDS, UNIVERSE_SIZE, Fixture, LightsConfig

Levels = tuple[float, float, float]  # linear light, 0–1 per channel
_DARK: Levels = (0.0, 0.0, 0.0)


def default_patch(floors: int, bays: int, kind: str, first_universe: int) -> tuple[Fixture, ...]:
    """Windows floor by floor (floor 0 at the top), bay by bay, each fixture on the
    channels after the last one's, from channel 1 of `first_universe`; a fixture that
    would not fit in what a universe has left starts the next (an `rgb` universe holds
    170 windows on channels 1–510)."""
    width = KINDS[kind]
    per_universe = UNIVERSE_SIZE // width
    return tuple(
        Fixture(first_universe + n // per_universe, 1 + (n % per_universe) * width, kind)
        for n in range(floors * bays)
    )


@dataclass(frozen=True, slots=True)
class Patch:
    """Each window's fixture (`fixtures[floor * bays + bay]`) and the look settings."""

    fixtures: tuple[Fixture, ...]
    bays: int
    master: float = 1.0
    gamma: float = 2.2
    idle: Levels = _DARK

    @classmethod
    def of(cls, config: LightsConfig, facade: Facade) -> Patch:
        """The patch `config` gives the facade: its `windows`, or the default one."""
        fixtures = config.windows or default_patch(
            facade.floors, facade.bays, config.fixture, config.first_universe
        )
        idle = levels(config.idle_color, config.idle, config.master, config.gamma)
        return cls(fixtures, facade.bays, config.master, config.gamma, idle)

    @property
    def universes(self) -> tuple[int, ...]:
        return tuple(sorted({f.universe for f in self.fixtures}))

    def frames(self, scene: Scene) -> dict[int, bytes]:
        """Every universe of the patch as its 512 DMX slots, for `scene`."""
        windows: list[Levels] = [self.idle] * len(self.fixtures)
        for light in scene.lit:
            if not (0 <= light.bay < self.bays):
                continue  # a scene of another facade: nothing of it lands off the patch
            index = light.floor * self.bays + light.bay
            if not 0 <= index < len(windows):
                continue
            lit = levels(light.color, light.intensity, self.master, self.gamma)
            old = windows[index]
            windows[index] = (max(old[0], lit[0]), max(old[1], lit[1]), max(old[2], lit[2]))
        out = {universe: bytearray(UNIVERSE_SIZE) for universe in self.universes}
        for fixture, level in zip(self.fixtures, windows, strict=True):
            frame = out[fixture.universe]
            start = fixture.channel - 1  # channel 1 is slot 0 after the start code
            for offset, value in enumerate(channel_values(fixture.kind, level)):
                frame[start + offset] = max(frame[start + offset], value)
        return {universe: bytes(frame) for universe, frame in out.items()}

    def blackout(self) -> dict[int, bytes]:
        """Every universe of the patch dark: the last frame a show sends."""
        return {universe: bytes(UNIVERSE_SIZE) for universe in self.universes}


def levels(color: str, intensity: float, master: float, gamma: float) -> Levels:
    """The linear light of `color` ("#rrggbb") at perceptual `intensity` (0–1)."""
    scale = min(1.0, max(0.0, intensity)) * min(1.0, max(0.0, master)) / 255
    r, g, b = rgb(color)
    return ((r * scale) ** gamma, (g * scale) ** gamma, (b * scale) ** gamma)


def channel_values(kind: str, level: Levels) -> tuple[int, ...]:
    """What a fixture of `kind` gets on its channels for linear `level`."""
    r, g, b = level
    if kind == "rgbw":
        w = min(r, g, b)
        return _dmx(r - w), _dmx(g - w), _dmx(b - w), _dmx(w)
    if kind == "dimmer":
        return (_dmx(max(r, g, b)),)
    return _dmx(r), _dmx(g), _dmx(b)


def _dmx(level: float) -> int:
    return min(255, max(0, round(level * 255)))
