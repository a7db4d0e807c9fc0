"""What each caller hears on ``NAME:callers`` (relay/contract/callers.py): the engine's
caller updates and scenes in, that channel's events out. Pure: no socket, no clock of
its own (a scene carries its time); `Show` calls it on the engine thread and hands
what it returns to the relay link.

- Every `Assign` is told again as a `Place` with the track's `mode` (how its keys
  play) and, once the facade has one for it, its `region`; a caller put in line while
  the operator rests the building also hears a ``paused`` notice.
- A region that moves (others came or went) is told again, at most every
  `REGION_RETELL_S` to each caller: a phone is told where its part is, not each step
  of the facade's rearranging.
- The digest goes out when it changed, at most every `DIGEST_MIN_INTERVAL_S`, and every
  `DIGEST_KEEPALIVE_S` regardless, so a keypad can tell a quiet building from a gone one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from relay.contract.callers import (
    DIGEST_KEEPALIVE_S,
    DIGEST_MIN_INTERVAL_S,
    Digest,
    Notice,
    Place,
)

from .engine import Scene
from .engine.events import Assign, EngineUpdate, Left
from .engine.tracks import TrackSpec

REGION_RETELL_S: Final = 5.0

Region = tuple[int, int]


class News:
    """The callers channel's events for one show."""

    def __init__(self, tracks: Sequence[TrackSpec]) -> None:
        self._modes = {t.name: t.mode for t in tracks}
        self._colors = {t.name: t.color for t in tracks}
        self._regions: dict[str, Region | None] = {}  # by track, from the latest scene
        self._seated: dict[str, str] = {}  # caller → track
        self._told: dict[str, tuple[Region | None, float]] = {}  # caller → region, when
        self._paused = False
        self._digest: Digest | None = None
        self._digest_at = float("-inf")
        self._now = float("-inf")

    def updates(self, updates: Iterable[EngineUpdate]) -> list[dict[str, Any]]:
        """The engine's `Assign`s, `Left`s and `Notice`s as the callers channel says them."""
        out: list[dict[str, Any]] = []
        for update in updates:
            caller = update.caller
            if isinstance(update, Notice):  # a kick undone: they may play again
                out.append(update.to_data())
                continue
            if isinstance(update, Left):
                self._seated.pop(caller, None)
                self._told.pop(caller, None)
                out.append(update.to_data())
                continue
            assert isinstance(update, Assign)
            if update.track is None:
                self._seated.pop(caller, None)
                self._told.pop(caller, None)
                out.append(Place(update).to_data())
                if self._paused and update.line > 0:
                    out.append(Notice(caller, "paused").to_data())
                continue
            self._seated[caller] = update.track
            region = self._regions.get(update.track)
            self._told[caller] = (region, self._now)
            out.append(Place(update, self._modes.get(update.track), region).to_data())
        return out

    def scene(self, scene: Scene) -> list[dict[str, Any]]:
        """Regions that moved, told to their callers, and the digest when it is due."""
        now = self._now = scene.time
        self._regions = {t.name: t.region for t in scene.tracks}
        self._paused = scene.paused
        out: list[dict[str, Any]] = []
        for caller, track in self._seated.items():
            region = self._regions.get(track)
            told, when = self._told.get(caller, (None, float("-inf")))
            if region != told and (told is None or now - when >= REGION_RETELL_S):
                self._told[caller] = (region, now)
                assign = Assign(caller, track, self._colors.get(track), 0)
                out.append(Place(assign, self._modes.get(track), region).to_data())
        digest = Digest(
            tempo=scene.bpm,
            key=scene.key,
            scale=scene.scale,
            playing=sum(1 for t in scene.tracks if t.caller is not None),
            waiting=scene.line_length,
            bays=scene.facade.bays,
            paused=scene.paused,
        )
        since = now - self._digest_at
        changed = digest.to_data() != (self._digest.to_data() if self._digest else None)
        if (changed and since >= DIGEST_MIN_INTERVAL_S) or since >= DIGEST_KEEPALIVE_S:
            self._digest, self._digest_at = digest, now
            out.append(digest.to_data())
        return out
