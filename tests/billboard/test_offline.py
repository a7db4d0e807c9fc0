"""A night rendered offline from its event log: `render_night` in this process, then
``python -m billboard --replay … --render … --record …`` as a real process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import mido
import numpy as np
import pytest

from billboard.config import BillboardConfig
from billboard.engine import Command, InputEvent, Join, NoteOn
from billboard.offline import TAIL_S, RenderError, night_notes, read_night, render_night
from billboard.render import RATE
from tests.billboard.nights import crowd_events, write_log
from tests.support.processes import HEADLESS_ENV, ROOT

SOUNDS = ROOT / "sounds"


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.reshape(-1, 2).astype(np.float64) / 32768.0


def note_ons(path: Path) -> dict[str, list[tuple[int, int, int]]]:
    """Track name → [(tick, channel, note)] of the file's note-ons, sorted (notes on
    one tick keep the order they were played in, which the comparison need not)."""
    out: dict[str, list[tuple[int, int, int]]] = {}
    for track in mido.MidiFile(path).tracks[1:]:
        tick, found = 0, []
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                found.append((tick, msg.channel, msg.note))
        out[track.name] = sorted(found)
    return out


def test_a_night_renders_to_the_notes_the_show_plays_in_audio_and_midi(tmp_path: Path) -> None:
    config = BillboardConfig()
    log = write_log(tmp_path / "night.jsonl", crowd_events(3, 5.0))
    wav, mid = tmp_path / "night.wav", tmp_path / "night.mid"

    rendered = render_night(config, log, wav, record=mid, sounds_dir=SOUNDS)

    events = read_night(log)
    until = events[-1][0] + TAIL_S
    notes = [n for n in night_notes(config, events, until) if isinstance(n, NoteOn)]
    audio = read_wav(wav)
    assert rendered.seconds == pytest.approx(len(audio) / RATE) and rendered.seconds >= until
    assert rendered.clipped == 0 and "0 samples clipped" in rendered.summary()
    # The recording holds each note at the tick its second makes at the session tempo,
    # on its track, or the bed's part on its own channel on a track of its own.
    ticks_per_s = 480 * 1e6 / mido.bpm2tempo(config.bpm)
    bed = {voice.channel: f"bed {voice.part}" for voice in config.bed_voices}
    names = [*(t.name for t in config.tracks), *bed.values()]
    expected: dict[str, list[tuple[int, int, int]]] = {name: [] for name in names}
    for note in notes:
        name = bed.get(note.channel, note.track)
        expected[name].append((round(note.time * ticks_per_s), note.channel, note.note))
    assert expected["bed pad"]  # the bed held the chord on the pad nobody took
    assert note_ons(mid) == {name: sorted(found) for name, found in expected.items()}
    # And every note sounds in the audio, from its own time on.
    for note in notes[:: max(1, len(notes) // 20)]:
        start = round(note.time * RATE)
        assert np.abs(audio[start : start + RATE // 20]).max() > 1e-3, note


def test_an_operator_tempo_change_in_the_log_reaches_the_recording(tmp_path: Path) -> None:
    events: list[tuple[float, InputEvent]] = [
        (0.0, Join("c-a")),
        (1.0, Command("tempo", {"bpm": 150.0})),
    ]
    mid = tmp_path / "night.mid"
    log = write_log(tmp_path / "night.jsonl", events)
    render_night(BillboardConfig(), log, tmp_path / "n.wav", record=mid, sounds_dir=SOUNDS)
    tempos = [msg.tempo for msg in mido.MidiFile(mid).tracks[0] if msg.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(112.0), mido.bpm2tempo(150.0)]


def test_an_operators_key_and_scale_changes_in_the_log_reach_the_recording(
    tmp_path: Path,
) -> None:
    events: list[tuple[float, InputEvent]] = [
        (0.0, Join("c-a")),
        (1.0, Command("key", {"key": "G"})),
        (2.0, Command("scale", {"name": "minor"})),
    ]
    mid = tmp_path / "night.mid"
    log = write_log(tmp_path / "night.jsonl", events)
    render_night(BillboardConfig(), log, tmp_path / "n.wav", record=mid, sounds_dir=SOUNDS)
    found, tick = [], 0
    for msg in mido.MidiFile(mid).tracks[0]:
        tick += msg.time
        if msg.type == "key_signature":
            found.append((tick, msg.key))
    # 112 beats a minute of 480 ticks: 896 ticks a second.
    assert found == [(0, "C"), (896, "G"), (1792, "Gm")]


def test_duration_is_how_long_the_music_plays(tmp_path: Path) -> None:
    log = write_log(tmp_path / "night.jsonl", crowd_events(2, 8.0))
    config = BillboardConfig()
    notes = night_notes(config, read_night(log), until=3.0)
    assert max(n.time for n in notes if isinstance(n, NoteOn)) <= 3.0
    rendered = render_night(config, log, tmp_path / "n.wav", duration=3.0, sounds_dir=SOUNDS)
    assert 3.0 <= rendered.seconds < 3.0 + 6.5  # then the last sounds die away


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the event log"),
        ("", "holds no events"),
        ("not json\n\n", "holds no events"),
    ],
)
def test_a_log_that_cannot_be_read_or_holds_no_events_is_refused_clearly(
    tmp_path: Path, content: str | None, message: str
) -> None:
    log = tmp_path / "night.jsonl"
    if content is not None:
        log.write_text(content)
    wav = tmp_path / "night.wav"
    with pytest.raises(RenderError, match=message):
        render_night(BillboardConfig(), log, wav, sounds_dir=SOUNDS)
    assert not wav.exists()


@pytest.mark.parametrize("output", ["wav", "mid"])
@pytest.mark.parametrize(("where", "message"), [("nowhere/x", "no such directory"), (".", "")])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(
    tmp_path: Path, output: str, where: str, message: str
) -> None:
    log = write_log(tmp_path / "night.jsonl", [(0.0, Join("c-a"))])
    bad = tmp_path / where
    wav = bad if output == "wav" else tmp_path / "night.wav"
    mid = bad if output == "mid" else tmp_path / "night.mid"
    with pytest.raises(RenderError, match=f"{re.escape(str(bad))}.*{message}"):
        render_night(BillboardConfig(), log, wav, record=mid, sounds_dir=SOUNDS)
    assert not (tmp_path / "night.wav").exists() and not (tmp_path / "night.mid").exists()


# -- the command line --------------------------------------------------------------


def billboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billboard", *args],
        cwd=ROOT,
        env={**os.environ, **HEADLESS_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_renders_a_logged_night_to_wav_and_midi(tmp_path: Path) -> None:
    log = write_log(tmp_path / "night.jsonl", crowd_events(4, 6.0))
    wav, mid = tmp_path / "night.wav", tmp_path / "night.mid"

    done = billboard("--replay", str(log), "--render", str(wav), "--record", str(mid))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("rendered")]
    said = re.fullmatch(
        r"rendered (?P<seconds>[\d.]+) s of music in [\d.]+ s \(\d+× real time\), "
        r"limiter on [\d.]+ % of the time \(at most -[\d.]+ dB\), "
        r"(?P<clipped>\d+) samples clipped -> (?P<wav>.*)",
        line,
    )
    assert said is not None, line
    print(f"\n{line}")  # the speed depends on the machine: shown, never asserted
    events = read_night(log)
    notes = night_notes(BillboardConfig(), events, events[-1][0] + TAIL_S)
    first = min(n.time for n in notes if isinstance(n, NoteOn))
    audio = read_wav(wav)
    assert said["wav"] == str(wav)
    assert float(said["seconds"]) == pytest.approx(len(audio) / RATE, abs=0.05)
    assert np.abs(audio[: round(first * RATE)]).max() < 1e-3  # silent before the first note
    assert np.sqrt(np.mean(audio[round(first * RATE) : round(8.0 * RATE)] ** 2)) > 0.01
    assert int(said["clipped"]) == 0
    on_count = sum(len(found) for found in note_ons(mid).values())
    assert on_count == sum(isinstance(n, NoteOn) for n in notes)


def test_render_without_replay_is_a_one_line_usage_error(tmp_path: Path) -> None:
    done = billboard("--render", str(tmp_path / "night.wav"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "dialjam billboard: error: --render needs --replay FILE.jsonl"
    ]


def test_an_unreadable_log_ends_the_command_with_a_clear_message(tmp_path: Path) -> None:
    done = billboard(
        "--replay", str(tmp_path / "missing.jsonl"), "--render", str(tmp_path / "night.wav")
    )
    assert done.returncode == 1
    assert "cannot read the event log" in done.stderr and "Traceback" not in done.stderr
