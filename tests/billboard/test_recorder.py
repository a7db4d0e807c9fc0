"""MidiRecorder: the show as a Standard MIDI File that other programs can open."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import mido
import pytest

from billboard.engine.bed import DEFAULT_VOICES
from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.harmony import NOTE_NAMES, SCALES
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.recorder import MidiRecorder

if TYPE_CHECKING:  # pytest_plugins imports it, so that pytest rewrites its asserts
    from tests.services import FluidSynth


BPM = 100  # 0.6 s a beat: 480 ticks every 0.6 s, 800 ticks a second
NAMES = [track.name for track in DEFAULT_TRACKS]
BED_NAMES = [f"bed {voice.part}" for voice in DEFAULT_VOICES]


def on(time: float, track: str, channel: int, note: int, velocity: int = 100) -> NoteOn:
    return NoteOn(time=time, step=0, track=track, channel=channel, note=note, velocity=velocity)


def off(time: float, track: str, channel: int, note: int) -> NoteOff:
    return NoteOff(time=time, step=0, track=track, channel=channel, note=note)


def events(track: Any) -> list[tuple[int, str, int, int, int]]:
    """(absolute tick, type, channel, note, velocity) of a track's notes."""
    now, found = 0, []
    for msg in track:
        now += msg.time
        if msg.type in ("note_on", "note_off"):
            velocity = msg.velocity if msg.type == "note_on" else 0
            found.append((now, msg.type, msg.channel, msg.note, velocity))
    return found


def track_named(midi_file: Any, name: str) -> Any:
    [track] = [track for track in midi_file.tracks if track.name == name]
    return track


def programs(track: Any) -> list[tuple[int, int]]:
    return [(msg.channel, msg.program) for msg in track if msg.type == "program_change"]


def key_signatures(path: Path) -> list[tuple[int, str]]:
    """(absolute tick, key) of the key signatures in the file's conductor track."""
    now, found = 0, []
    for msg in mido.MidiFile(path).tracks[0]:
        now += msg.time
        if msg.type == "key_signature":
            found.append((now, msg.key))
    return found


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "show.mid"


def test_the_file_has_a_tempo_track_then_one_named_track_per_instrument_with_its_program(
    path: Path,
) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.note_on(on(10.0, "bass", 0, 40))
    recorder.note_off(off(10.3, "bass", 0, 40))
    recorder.close()

    midi_file = mido.MidiFile(path)
    assert midi_file.type == 1
    assert midi_file.ticks_per_beat == 480
    # Then the bed's pitched parts, each on a track of its own (its own test below).
    assert [track.name for track in midi_file.tracks] == ["dialjam", *NAMES, *BED_NAMES]
    tempos = [msg.tempo for msg in midi_file.tracks[0] if msg.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(BPM)]
    for spec in DEFAULT_TRACKS:
        # GM channel 10 (9 from zero) is the drum kit: no program change there.
        expected = [] if spec.channel == 9 else [(spec.channel, spec.program)]
        assert programs(track_named(midi_file, spec.name)) == expected


def test_the_beds_parts_are_recorded_on_tracks_of_their_own_with_their_own_programs(
    path: Path,
) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.note_on(on(0.0, "bass", 10, 36))  # the bed's bass line, on its channel 11
    recorder.note_off(off(0.3, "bass", 10, 36))
    recorder.note_on(on(0.6, "bass", 0, 40))  # a caller on the bass track, on its channel 1
    recorder.note_off(off(0.9, "bass", 0, 40))
    recorder.note_on(on(0.6, "pad", 12, 60))  # the bed's pad
    recorder.note_off(off(1.2, "pad", 12, 60))
    recorder.close()

    midi_file = mido.MidiFile(path)
    assert events(track_named(midi_file, "bed bass")) == [
        (0, "note_on", 10, 36, 100),
        (240, "note_off", 10, 36, 0),
    ]
    assert events(track_named(midi_file, "bass")) == [
        (480, "note_on", 0, 40, 100),
        (720, "note_off", 0, 40, 0),
    ]
    assert events(track_named(midi_file, "bed pad")) == [
        (480, "note_on", 12, 60, 100),
        (960, "note_off", 12, 60, 0),
    ]
    assert events(track_named(midi_file, "pad")) == []
    assert programs(track_named(midi_file, "bed bass")) == [(10, 38)]
    assert programs(track_named(midi_file, "bed chords")) == [(11, 4)]
    assert programs(track_named(midi_file, "bed pad")) == [(12, 89)]


def test_each_recorded_track_starts_with_its_mix_volume_pan_and_reverb_as_the_midi_out_sends_it(
    path: Path,
) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.close()

    def controls(name: str) -> list[tuple[int, int, int, int]]:
        return [
            (msg.time, msg.channel, msg.control, msg.value)
            for msg in track_named(mido.MidiFile(path), name)
            if msg.type == "control_change"
        ]

    # By hand from DEFAULT_TRACKS: volume 100·10^(dB/40), pan 64 + 63.5·pan, 127·reverb.
    assert controls("chords") == [(0, 1, 7, 94), (0, 1, 10, 39), (0, 1, 91, 32)]
    assert controls("drums") == [(0, 9, 7, 100), (0, 9, 10, 64), (0, 9, 91, 15)]
    assert controls("percussion") == []  # channel 10 is the drums' to set
    assert controls("bed pad") == [(0, 12, 7, 89), (0, 12, 10, 93), (0, 12, 91, 44)]


def test_the_recording_begins_with_4_4_and_the_keys_signature(path: Path) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM, key="F#", scale="minor")
    recorder.note_on(on(0.0, "lead", 2, 66))
    recorder.note_off(off(0.3, "lead", 2, 66))
    recorder.close()

    [meter] = [msg for msg in mido.MidiFile(path).tracks[0] if msg.type == "time_signature"]
    assert (meter.time, meter.numerator, meter.denominator) == (0, 4, 4)
    assert (meter.clocks_per_click, meter.notated_32nd_notes_per_beat) == (24, 8)
    assert key_signatures(path) == [(0, "F#m")]


def test_an_operators_key_and_scale_changes_write_new_key_signatures_at_their_times(
    path: Path,
) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)  # C major
    recorder.start(0.0)
    recorder.set_scale("dorian", 0.0)  # at time zero: the opening key
    recorder.set_key("A", 1.2)
    recorder.set_scale("mixolydian", 2.4)
    recorder.set_scale("major", 3.0)  # A major is written as A mixolydian was
    recorder.set_key("Bb", 3.6)
    recorder.close(now=4.2)

    # 800 ticks a second; a mode is written as its tonic's major or minor key.
    assert key_signatures(path) == [(0, "Cm"), (960, "Am"), (1920, "A"), (2880, "Bb")]


# The engine's scales written as a minor key (a minor third over the tonic) and as a
# major one. A new scale must be put in one of them.
MINOR_SCALES = {"minor", "dorian", "minor_pentatonic"}
MAJOR_SCALES = {"major", "mixolydian", "pentatonic"}
FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}


def test_every_key_and_scale_of_the_engine_is_written_as_a_signature_on_its_tonic(
    path: Path,
) -> None:
    assert set(SCALES) == MINOR_SCALES | MAJOR_SCALES
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.start(0.0)
    played = [("C", False)]  # the opening C major
    time = 0.0
    for scale in SCALES:
        for key in NOTE_NAMES:
            time += 0.6
            recorder.set_key(key, time)
            recorder.set_scale(scale, time)
            if (key, scale in MINOR_SCALES) != played[-1]:  # the same signature again: none
                played.append((key, scale in MINOR_SCALES))
    recorder.close(now=time)

    written = []
    for _, name in key_signatures(path):  # mido reads every one
        tonic = name.removesuffix("m")
        written.append((FLATS.get(tonic, tonic), name.endswith("m")))
    assert written == played


def test_notes_land_on_the_ticks_their_seconds_make_at_the_session_tempo(path: Path) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.note_on(on(10.0, "bass", 0, 40, 104))  # the first note: time zero
    recorder.note_on(on(10.6, "drums", 9, 36, 110))
    recorder.note_off(off(10.3, "bass", 0, 40))  # notes arrive in the order they were made
    recorder.note_off(off(10.75, "drums", 9, 36))
    recorder.note_on(on(10.6, "percussion", 9, 42, 90))
    recorder.note_off(off(10.6375, "percussion", 9, 42))
    recorder.close()

    midi_file = mido.MidiFile(path)
    assert events(track_named(midi_file, "bass")) == [
        (0, "note_on", 0, 40, 104),
        (240, "note_off", 0, 40, 0),
    ]
    assert events(track_named(midi_file, "drums")) == [
        (480, "note_on", 9, 36, 110),
        (600, "note_off", 9, 36, 0),
    ]
    assert events(track_named(midi_file, "percussion")) == [
        (480, "note_on", 9, 42, 90),
        (510, "note_off", 9, 42, 0),
    ]
    assert events(track_named(midi_file, "lead")) == []


def test_an_explicit_start_is_time_zero(path: Path) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.start(4.4)
    recorder.note_on(on(5.0, "lead", 2, 72))
    recorder.note_off(off(5.3, "lead", 2, 72))
    recorder.close()

    assert events(track_named(mido.MidiFile(path), "lead")) == [
        (480, "note_on", 2, 72, 100),
        (720, "note_off", 2, 72, 0),
    ]


def test_a_key_struck_again_as_it_ends_is_released_before_it_sounds_again(path: Path) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.note_on(on(0.0, "pluck", 3, 64))
    recorder.note_on(on(0.3, "pluck", 3, 64))  # the engine sends the new strike first
    recorder.note_off(off(0.3, "pluck", 3, 64))
    recorder.note_off(off(0.6, "pluck", 3, 64))
    recorder.close()

    assert events(track_named(mido.MidiFile(path), "pluck")) == [
        (0, "note_on", 3, 64, 100),
        (240, "note_off", 3, 64, 0),
        (240, "note_on", 3, 64, 100),
        (480, "note_off", 3, 64, 0),
    ]


def test_notes_still_sounding_at_close_get_a_note_off(path: Path) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.note_on(on(0.0, "pad", 4, 60))
    recorder.note_on(on(0.6, "bells", 5, 84))
    recorder.note_off(off(0.9, "bells", 5, 84))
    recorder.note_on(on(1.2, "bass", 0, 40))
    recorder.close(now=1.8)

    midi_file = mido.MidiFile(path)
    assert events(track_named(midi_file, "pad")) == [
        (0, "note_on", 4, 60, 100),
        (1440, "note_off", 4, 60, 0),
    ]
    assert events(track_named(midi_file, "bass")) == [
        (960, "note_on", 0, 40, 100),
        (1440, "note_off", 0, 40, 0),
    ]


def test_a_tempo_change_keeps_every_note_at_the_second_it_sounded(path: Path) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    played = [0.0, 0.6, 1.2, 1.95, 2.4, 3.0]
    recorder.start(0.0)
    recorder.set_tempo(150, 1.5)
    for time in played:
        recorder.note_on(on(time, "lead", 2, 72))
        recorder.note_off(off(time + 0.1, "lead", 2, 72))
    recorder.close()

    midi_file = mido.MidiFile(path)
    tempos = [msg.tempo for msg in midi_file.tracks[0] if msg.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(100), mido.bpm2tempo(150)]
    # Playing the file back (mido applies the tempo map) gives the seconds we heard.
    heard, now = [], 0.0
    for msg in midi_file:
        now += msg.time
        if msg.type == "note_on":
            heard.append(now)
    assert heard == pytest.approx(played, abs=0.002)


def test_flush_writes_a_playable_file_mid_show_and_recording_goes_on(path: Path) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.note_on(on(0.0, "pad", 4, 60))
    recorder.note_on(on(0.3, "bass", 0, 40))
    recorder.note_off(off(0.6, "bass", 0, 40))

    recorder.flush(now=1.2)

    snapshot = mido.MidiFile(path)
    assert events(track_named(snapshot, "pad")) == [
        (0, "note_on", 4, 60, 100),
        (960, "note_off", 4, 60, 0),  # still sounding: ended where the snapshot ends
    ]
    recorder.note_off(off(2.4, "pad", 4, 60))
    recorder.close()
    assert events(track_named(mido.MidiFile(path), "pad")) == [
        (0, "note_on", 4, 60, 100),
        (1920, "note_off", 4, 60, 0),
    ]
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_write_that_fails_midway_leaves_the_previous_file_whole(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, BPM)
    recorder.note_on(on(0.0, "bass", 0, 40))
    recorder.note_off(off(0.3, "bass", 0, 40))
    recorder.flush()
    before = path.read_bytes()

    def disk_full(fd: int) -> None:  # the new file's bytes never reach the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("billboard.recorder.os.fsync", disk_full)
    recorder.note_on(on(0.6, "lead", 2, 72))
    with pytest.raises(OSError, match="No space left"):
        recorder.flush()

    assert path.read_bytes() == before
    assert events(track_named(mido.MidiFile(path), "bass")) == [
        (0, "note_on", 0, 40, 100),
        (240, "note_off", 0, 40, 0),
    ]
    assert list(path.parent.iterdir()) == [path]


def test_recording_into_a_missing_directory_fails_when_the_show_starts_not_when_it_ends(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match="no such directory"):
        MidiRecorder(tmp_path / "nowhere" / "show.mid", DEFAULT_TRACKS, BPM)


def test_the_recording_renders_to_audible_sound_with_fluidsynth(
    path: Path, tmp_path: Path, fluidsynth: FluidSynth
) -> None:
    recorder = MidiRecorder(path, DEFAULT_TRACKS, 120)
    for beat in range(4):  # a bar of bass, chords and drums
        t = beat * 0.5
        recorder.note_on(on(t, "bass", 0, 36 + beat * 2, 110))
        recorder.note_on(on(t, "chords", 1, 60, 90))
        recorder.note_on(on(t, "drums", 9, 36 if beat % 2 == 0 else 38, 120))
        recorder.note_off(off(t + 0.4, "bass", 0, 36 + beat * 2))
        recorder.note_off(off(t + 0.4, "chords", 1, 60))
        recorder.note_off(off(t + 0.1, "drums", 9, 36 if beat % 2 == 0 else 38))
    recorder.close()

    wav = fluidsynth.render(path, tmp_path / "show.wav")

    from tests.services import wav_rms  # here: pytest_plugins must import it first

    # With TimGM6mb this bar and its release tail measure about 0.015 of full scale;
    # an empty recording renders to about 0.00003.
    assert wav_rms(wav) > 0.003


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_without_fluidsynth_a_ci_run_fails_and_a_local_run_skips_saying_what_to_install(
    ci: str, outcome: type[BaseException], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.services import find_fluidsynth

    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth on it

    with pytest.raises(outcome, match="apt-get install fluidsynth"):
        find_fluidsynth()


def test_a_recording_that_cannot_be_written_warns_and_the_show_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from billboard.frontend import flush_all
    from relay.ratelimit import LogOnce

    stick = tmp_path / "stick"
    stick.mkdir()
    recorder = MidiRecorder(stick / "show.mid", DEFAULT_TRACKS, BPM)
    gone = tmp_path / "unplugged"
    stick.rename(gone)  # a USB stick pulled out mid-show: its folder is gone
    recorder.note_on(on(0.0, NAMES[0], 0, 60))
    failures = LogOnce(every_s=300.0)
    with caplog.at_level("WARNING", logger="billboard.frontend"):
        for minute in range(3):  # every flush fails; none raises
            flush_all([recorder], failures, now=60.0 * minute)
    warnings = [r for r in caplog.records if "cannot write the recording" in r.message]
    assert len(warnings) == 1  # once per five minutes, not once per flush
    gone.rename(stick)  # the stick is back: the next flush writes the file
    flush_all([recorder], failures, now=240.0)
    assert mido.MidiFile(stick / "show.mid").tracks
