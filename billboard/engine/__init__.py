"""The pure music engine: no pygame, mido or aiohttp here (a test checks)."""

from .bed import BedVoice
from .engine import Engine, EngineConfig
from .events import (
    Assign,
    Command,
    Digit,
    InputEvent,
    Join,
    Leave,
    Left,
    Note,
    NoteOff,
    NoteOn,
    read_input,
)
from .scene import Facade, Scene
from .tracks import DEFAULT_TRACKS, TrackSpec

__all__ = [
    "DEFAULT_TRACKS",
    "Assign",
    "BedVoice",
    "Command",
    "Digit",
    "Engine",
    "EngineConfig",
    "Facade",
    "InputEvent",
    "Join",
    "Leave",
    "Left",
    "Note",
    "NoteOff",
    "NoteOn",
    "Scene",
    "TrackSpec",
    "read_input",
]
