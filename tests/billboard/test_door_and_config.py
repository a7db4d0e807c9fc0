"""The billboard's door (pseudonyms) and its settings, without I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from billboard.config import ConfigError, load_billboard_config
from billboard.door import Door
from billboard.engine import BedVoice, Command, Digit, Join, Leave
from billboard.eventlog import EventLog, read_events
from relay.config import load_installation
from relay.contract.privacy import masked, pseudonym

KEY = b"test-key"


def test_a_seed_message_becomes_a_join_and_a_digit_under_a_pseudonym() -> None:
    door = Door(KEY)
    events = door.admit({"caller_id": "4155551212", "command": "5"})
    caller = pseudonym("4155551212", KEY)
    assert events == [Join(caller, "seed", "…12"), Digit(caller, "5", "seed")]
    assert door.admit({"ani": "(415) 555-1212", "command": "7"}) == [
        Digit(caller, "7", "seed")  # the same number, written otherwise: the same caller
    ]
    assert "4155551212" not in repr(events)


def test_pseudonyms_depend_on_the_key_and_show_two_digits_at_most() -> None:
    assert pseudonym("4155551212", b"a") != pseudonym("4155551212", b"b")
    assert pseudonym("4155551212", b"a").startswith("c-")
    assert masked("+1 415 555 1212") == "…12" and masked("anonymous") is None


def test_a_caller_field_holding_a_number_is_pseudonymised_too() -> None:
    (event,) = Door(KEY).admit({"event": "digit", "caller": "+14155551212", "digit": "3"})
    assert event == Digit(pseudonym("+14155551212", KEY), "3")


def test_designs_event_shapes_pass_the_door_unchanged() -> None:
    door = Door(KEY)
    assert door.admit({"event": "leave", "caller": "c-pfbnkdsvqt", "reason": "hangup"}) == [
        Leave("c-pfbnkdsvqt", "hangup")
    ]


@pytest.mark.parametrize(
    "data",
    [
        {"caller_id": "4155551212", "command": "55"},
        {"caller_id": "4155551212", "command": None},
        {"caller_id": ["x"], "command": "5"},
        {"event": "digit", "caller": "c-1", "digit": "x"},
        {"event": "nonsense"},
        {},
    ],
)
def test_bad_messages_are_refused_without_an_exception(data: dict[str, object]) -> None:
    door = Door(KEY)
    assert door.admit(data) == []
    assert door.refused == 1


def test_the_event_log_replays_the_same_events_at_the_same_times(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, start=100.0)
    log.write(Join("c-a", "twilio", "…12"), 100.5)
    log.write(Digit("c-a", "5"), 101.25)
    log.close()
    with path.open("a") as f:
        f.write("not json\n")
    assert list(read_events(path)) == [
        (0.5, Join("c-a", "twilio", "…12")),
        (1.25, Digit("c-a", "5")),
    ]


def test_billboard_settings_come_from_the_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "dialjam.toml"
    path.write_text(
        "[billboard]\nbpm = 96\nkey = 'D'\nphone = '+1 415 555 0100'\n"
        "line_max = 50\nline_idle_s = 120\n"
        "[billboard.facade]\nfloors = 2\nbays = 2\n"
        "windows = [[0, 0, 0.5, 0.5], [0.5, 0, 0.5, 0.5],\n"
        "           [0, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]\n"
        "[[billboard.tracks]]\nname = 'bass'\ncolor = '#8a5cf6'\nchannel = 1\nprogram = 38\n"
        "samples = 'bass'\noctave = 2\nlength = 2\nmode = 'chord_tones'\n"
        "[[billboard.tracks]]\nname = 'bells'\ncolor = '#ec4899'\nchannel = 6\nprogram = 14\n"
        "samples = 'bell'\noctave = 6\nlength = 2\nmode = 'scale'\n"
        "pan = 0.5\ngain_db = -3\nreverb = 0.3\ndelay = 0.2\n"
    )
    config = load_billboard_config(load_installation(path, env={}), overrides={"bpm": 100})
    assert config.bpm == 100 and config.key == "D" and config.floors == 2
    assert config.tracks[0].channel == 0 and config.tracks[0].name == "bass"
    assert (config.tracks[0].pan, config.tracks[0].reverb) == (0.0, 0.0)  # the defaults
    bells = config.tracks[1]
    assert (bells.pan, bells.gain_db, bells.reverb, bells.delay) == (0.5, -3.0, 0.3, 0.2)
    engine_config = config.engine_config()
    assert engine_config.facade.bays == 2 and engine_config.key == "D"
    assert (engine_config.line_max, engine_config.line_idle_s) == (50, 120.0)


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("[billboard]\nbmp = 1\n", "no setting 'bmp'"),
        ("[billboard]\npseudonym_key = 'k'\n", "one pseudonym_key, in \\[relay\\]"),
        ("billboard = 1\n", "must be a table"),
        ("[billboard]\nkey = 'H'\n", "unknown key"),
        ("[billboard]\nscale = 'klingon'\n", "scale must be one of"),
        ("[billboard]\nrelay = 'http://x'\n", "ws://"),
        ("[billboard]\nsize = 'big'\n", "1920x1080"),
        ("[billboard]\nline_max = -1\n", "line_max must be"),
        ("[billboard]\nline_idle_s = 0\n", "line_idle_s must be"),
        ("[billboard.facade]\nfloors = 2\nbays = 2\nwindows = [[0, 0, 1, 1]]\n", "floors × bays"),
        ("[[billboard.tracks]]\nname = 'x'\n", "needs"),
        (
            "[[billboard.tracks]]\nname='x'\ncolor='red'\nchannel=1\nprogram=0\nsamples='bass'\n"
            "octave=2\nlength=1\nmode='scale'\n",
            "color",
        ),
        (
            "[[billboard.tracks]]\nname='x'\ncolor='#000000'\nchannel=17\nprogram=0\n"
            "samples='bass'\noctave=2\nlength=1\nmode='scale'\n",
            "channel must be 1–16",
        ),
        (
            "[[billboard.tracks]]\nname='x'\ncolor='#000000'\nchannel=1\nprogram=0\n"
            "samples='bass'\noctave=2\nlength=1\nmode='scale'\npan=2\n",
            "pan must be -1",
        ),
        (
            "[[billboard.tracks]]\nname='x'\ncolor='#000000'\nchannel=1\nprogram=0\n"
            "samples='bass'\noctave=2\nlength=1\nmode='scale'\ngain_db=6\n",
            "a fader turns down",
        ),
        (
            "[[billboard.tracks]]\nname='x'\ncolor='#000000'\nchannel=1\nprogram=0\n"
            "samples='bass'\noctave=2\nlength=1\nmode='scale'\nreverb=nan\n",
            "sends, 0 to 1",
        ),
        ("[billboard]\nbed_channels = 11\n", "bed_channels must be a table"),
        ("[billboard]\nbed_channels = { bass = 17 }\n", "bed_channels.bass must be 1–16, not 17"),
        ("[billboard]\nbed_channels = { bass = 'x' }\n", "bed_channels.bass must be a whole"),
        ("[billboard]\nbed_programs = { pad = 128 }\n", "bed_programs.pad must be 0–127"),
        ("[billboard]\nbed_channels = { lead = 14 }\n", "no part 'lead'.*bass, chords, pad"),
        ("[billboard]\nbed_channels = { drums = 10 }\n", "no part 'drums'.*drum channel 10"),
        ("[billboard]\nbed_channels = { pad = 10 }\n", "pad on channel 10, GM's drum channel"),
        ("[billboard]\nbed_channels = { chords = 13 }\n", "chords and pad are both on channel 13"),
    ],
)
def test_bad_billboard_settings_say_what_to_fix(tmp_path: Path, toml: str, fragment: str) -> None:
    path = tmp_path / "dialjam.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=fragment):
        load_billboard_config(load_installation(path, env={}))


def test_the_beds_channels_from_the_file_count_from_one_and_its_programs_are_gm(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dialjam.toml"
    path.write_text("[billboard]\nbed_channels = { bass = 14 }\nbed_programs = { pad = 90 }\n")
    config = load_billboard_config(load_installation(path, env={}))
    assert config.bed_voices == (
        BedVoice("bass", 13, 38),  # the others keep their defaults: 12 and 13 on a synth
        BedVoice("chords", 11, 4),
        BedVoice("pad", 12, 90),
    )
    assert config.engine_config().bed_voices == config.bed_voices == config.bed_midi()


def test_a_bed_channel_that_collides_with_a_tracks_is_refused_with_a_message_naming_both(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dialjam.toml"
    path.write_text("[billboard]\nbed_channels = { bass = 2 }\n")
    with pytest.raises(ConfigError) as raised:
        load_billboard_config(load_installation(path, env={}))
    message = str(raised.value)
    assert "the bed's bass on channel 2 collides with track 'chords' on channel 2" in message
    assert "bed_channels = { bass = 7 }" in message  # the first channel nobody uses


def test_a_track_on_a_default_bed_channel_is_refused_unless_there_is_no_bed(
    tmp_path: Path,
) -> None:
    track = (
        "[[billboard.tracks]]\nname = 'organ'\ncolor = '#8a5cf6'\nchannel = 12\n"
        "program = 16\nsamples = 'keys'\noctave = 4\nlength = 4\nmode = 'chord'\n"
    )
    path = tmp_path / "dialjam.toml"
    path.write_text(track)
    with pytest.raises(ConfigError, match="chords on channel 12 collides with track 'organ'"):
        load_billboard_config(load_installation(path, env={}))
    path.write_text("[billboard]\nstyle = 'none'\n" + track)
    config = load_billboard_config(load_installation(path, env={}))
    assert config.bed_midi() == ()  # no bed: nothing of it on MIDI, nothing to collide with


def test_the_example_config_states_the_billboard_defaults() -> None:
    from billboard.config import BillboardConfig

    example = Path(__file__).resolve().parents[2] / "dialjam.example.toml"
    assert load_billboard_config(load_installation(example, env={})) == BillboardConfig()


def test_the_public_channel_never_carries_a_command_and_poison_is_counted() -> None:
    door = Door(KEY)
    for poison in (
        {"event": "command", "name": "panic"},
        {"event": "command", "name": []},
        {"event": "leave", "caller": "c-x", "reason": {}},  # read, as a hangup
        {"event": ["digit"]},
        ["not", "an", "object"],
        None,
    ):
        events = door.admit(poison)
        assert all(not isinstance(e, Command) for e in events)
    assert door.refused == 5 and door.refused_by_code["wrong_channel"] == 2
    assert door.admit_command({"event": "command", "name": "panic"}) == [Command("panic", {})]
    assert door.admit_command({"event": "command", "name": "tempo", "args": {"bpm": "x"}}) == []
