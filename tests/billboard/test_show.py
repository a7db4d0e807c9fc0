"""The show's wiring of the engine thread to its outputs."""

from __future__ import annotations

import time
from pathlib import Path

import mido

from billboard.config import BillboardConfig
from billboard.engine import Command, NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.outputs import follow_key
from billboard.recorder import MidiRecorder
from billboard.show import Options, Show
from relay.config import RelayConfig


class Speaker:
    """An output with no tempo hook: it only plays notes."""

    name = "speaker"

    def __init__(self) -> None:
        self.closed = False

    def note_on(self, note: NoteOn) -> None:
        pass

    def note_off(self, note: NoteOff) -> None:
        pass

    def panic(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_an_operator_tempo_change_reaches_the_recording_and_spares_the_other_outputs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "show.mid"
    recorder = MidiRecorder(path, DEFAULT_TRACKS, 112.0)
    speaker = Speaker()
    show = Show(BillboardConfig(), RelayConfig(), Options(), sinks=[speaker, recorder])
    recorder.start(show.start)
    show.scheduler.start()
    show.submit(Command("tempo", {"bpm": 150.0}))
    deadline = time.monotonic() + 10  # generous: the engine thread applies it at once
    while show.scene.bpm != 150.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    show.scheduler.stop()  # closes every output: the recording is written

    tempos = [msg.tempo for msg in mido.MidiFile(path).tracks[0] if msg.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(112.0), mido.bpm2tempo(150.0)]
    assert speaker.closed


def key_signatures(path: Path) -> list[str]:
    return [msg.key for msg in mido.MidiFile(path).tracks[0] if msg.type == "key_signature"]


def test_an_operators_key_and_scale_changes_reach_the_recording_as_key_signatures(
    tmp_path: Path,
) -> None:
    path = tmp_path / "show.mid"
    recorder = MidiRecorder(path, DEFAULT_TRACKS, 112.0)
    show = Show(BillboardConfig(), RelayConfig(), Options(), sinks=[Speaker(), recorder])
    recorder.start(show.start)
    show.scheduler.start()
    for command, applied in (
        (Command("key", {"key": "D"}), lambda: show.scene.key == "D"),
        (Command("scale", {"name": "minor"}), lambda: show.scene.scale == "minor"),
    ):
        show.submit(command)  # one after the other: two changes at two moments
        deadline = time.monotonic() + 10  # generous: the engine thread applies it at once
        while not applied() and time.monotonic() < deadline:
            time.sleep(0.01)
    show.scheduler.stop()

    assert (show.scene.key, show.scene.scale) == ("D", "minor")
    assert key_signatures(path) == ["C", "D", "Dm"]


def test_a_key_or_scale_the_engine_would_ignore_reaches_no_output_and_raises_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "show.mid"
    recorder = MidiRecorder(path, DEFAULT_TRACKS, 112.0)
    recorder.start(0.0)
    outputs = [Speaker(), recorder]
    for ignored in (
        Command("key", {"key": "H"}),
        Command("key", {"key": ""}),
        Command("key", {}),
        Command("scale", {"name": "klingon"}),
        Command("scale", {"name": ["minor"]}),
        Command("scale", {}),
    ):
        follow_key(outputs, ignored, 1.0)
    follow_key(outputs, Command("key", {"key": "bb"}), 2.0)  # read as the engine reads it
    recorder.close(now=3.0)

    assert key_signatures(path) == ["C", "Bb"]
