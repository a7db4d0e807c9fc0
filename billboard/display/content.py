"""What the screen says, decided without pixels: the banner, the HUD's figures and the
legend's words (a test checks these without drawing anything)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from billboard.engine.scene import Scene, TrackView
from relay.contract.privacy import number_digits


@dataclass(frozen=True, slots=True)
class Banner:
    """What the street needs to join in: a number to call and a code to scan."""

    phone: str | None  # shown in full: it is the installation's own number
    keypad_url: str | None  # drawn as a QR code
    title: str = "dialjam"


@dataclass(frozen=True, slots=True)
class Hud:
    """The operator's numbers, drawn over the facade when the HUD is on."""

    fps: float
    frame_ms: float
    relay: str
    latency_ms: float | None
    callers: int
    midi_port: str | None
    extra: Mapping[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The HUD as text, one line per figure."""
        latency = "–" if self.latency_ms is None else f"{self.latency_ms:.1f} ms"
        out = [
            f"{self.fps:5.1f} fps   frame {self.frame_ms:4.1f} ms",
            f"relay    {self.relay}",
            f"latency  {latency}  (event to note)",
            f"callers  {self.callers}",
            f"MIDI     {self.midi_port or 'none'}",
        ]
        out += [f"{k}  {v}" for k, v in self.extra.items()]
        return out


def caller_label(display: str | None) -> str:
    """What the building may show of a caller: a nickname, or at most the last two
    digits of a number ("…12"). The engine already cleans both; a label carrying more
    than four digits (a bug upstream) is cut to its last two here too, because the
    facade is public and a phone number on it cannot be taken back."""
    if not display:
        return ""
    digits = number_digits(display)
    if len(digits) > 4:
        return "…" + digits[-2:]
    return display[:16]


def player_label(view: TrackView) -> str:
    """What the building calls the player on `view`: their nickname, "…12" (at most the
    last two digits of their number), or for an anonymous keypad "player" and two
    letters of their pseudonym ("player QT"), never a phone number."""
    shown = caller_label(view.display)
    if shown:
        return shown
    if view.caller:
        tail = "".join(ch for ch in view.caller[2:] if ch.isalpha())[-2:]
        return f"player {tail.upper()}" if tail else "player"
    return ""


@dataclass(frozen=True, slots=True)
class LegendLine:
    """One track as the legend shows it."""

    name: str
    who: str  # caller_label, or "free"
    state: str  # "", "muted", "leaving"
    active: bool  # a caller holds it, or their loop is still fading


def legend_lines(scene: Scene) -> list[LegendLine]:
    """The legend's text for every track of `scene`, in track order."""
    lines = []
    for view in scene.tracks:
        active = view.caller is not None or view.fading
        who = player_label(view) if view.caller is not None else ("" if view.fading else "free")
        state = "muted" if view.muted else ("leaving" if view.fading and not view.caller else "")
        lines.append(LegendLine(view.name, who, state, active))
    return lines
