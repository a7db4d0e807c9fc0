"""MidiOut against a real JACK server: what a synth connected to the billboard hears."""

from __future__ import annotations

import faulthandler
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rtmidi

from billboard.engine.bed import DEFAULT_VOICES, BedVoice
from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.midi_out import APIS, MidiOut, list_ports

if TYPE_CHECKING:  # pytest_plugins imports it, so that pytest rewrites its asserts
    from tests.services import JackServer, MidiProbe


OUT = "dialjam-test-out"  # our virtual output port


def on(track: str, channel: int, note: int, velocity: int) -> NoteOn:
    return NoteOn(time=0.0, step=0, track=track, channel=channel, note=note, velocity=velocity)


def off(track: str, channel: int, note: int) -> NoteOff:
    return NoteOff(time=0.0, step=0, track=track, channel=channel, note=note)


def all_notes_off(channels: set[int]) -> list[tuple[int, ...]]:
    return [(0xB0 | channel, 123, 0) for channel in sorted(channels)]


TRACK_CHANNELS = {track.channel for track in DEFAULT_TRACKS}


def mix(channel: int, volume: int, pan: int, reverb: int) -> list[tuple[int, ...]]:
    """A channel's mix as GM controllers: volume (CC 7), pan (CC 10), reverb (CC 91)."""
    return [(0xB0 | channel, 7, volume), (0xB0 | channel, 10, pan), (0xB0 | channel, 91, reverb)]


# The default installation's start, worked out by hand from DEFAULT_TRACKS: volume
# 100·10^(dB/40) (0 dB is GM's 100), pan 64 + 63.5·pan, reverb 127·send.
TRACKS_SETUP = [
    *mix(9, 100, 64, 15),  # drums: the kit (no program), centre, a little room
    (0xC0, 38),
    *mix(0, 100, 64, 0),  # bass: centre, dry
    (0xC1, 4),
    *mix(1, 94, 39, 32),  # chords: -1 dB, left
    (0xC2, 80),
    *mix(2, 100, 80, 25),  # lead: right
    (0xC3, 45),
    *mix(3, 100, 29, 19),  # pluck: further left
    (0xC4, 89),
    *mix(4, 89, 93, 44),  # pad: -2 dB, right, wet
    (0xC5, 14),
    *mix(5, 94, 102, 38),  # bells: far right
]  # percussion shares channel 10 with the drums, which set it first
# Every channel the show may sound on: the tracks' and the groove bed's own (11–13).
CHANNELS = TRACK_CHANNELS | {voice.channel for voice in DEFAULT_VOICES}


@pytest.fixture
def midi_out(jack_server: JackServer) -> Iterator[MidiOut]:
    out = MidiOut.open(virtual=OUT, api="jack")
    yield out
    out.close()


@pytest.fixture
def heard(midi_out: MidiOut, midi_probe: MidiProbe) -> MidiProbe:
    """The probe, connected to our output port as a synth would be."""
    midi_probe.connect(OUT)
    return midi_probe


def test_notes_reach_a_jack_input_in_order_with_their_channels_notes_and_velocities(
    midi_out: MidiOut, heard: MidiProbe
) -> None:
    midi_out.note_on(on("bass", 0, 40, 104))
    midi_out.note_on(on("drums", 9, 36, 110))
    midi_out.note_off(off("bass", 0, 40))
    midi_out.note_on(on("lead", 2, 76, 96))
    midi_out.note_off(off("drums", 9, 36))
    midi_out.note_off(off("lead", 2, 76))

    assert heard.wait_for(6) == [
        (0x90, 40, 104),
        (0x99, 36, 110),
        (0x80, 40, 64),
        (0x92, 76, 96),
        (0x89, 36, 64),
        (0x82, 76, 64),
    ]
    assert midi_out.ok


def test_opening_a_port_by_part_of_its_name_ignores_case_and_plays_into_it(
    jack_server: JackServer, midi_probe: MidiProbe
) -> None:
    jack_name = midi_probe.listen("Synth In")

    out = MidiOut.open("SYNTH in", api="jack")
    try:
        assert out.name == jack_name
        out.note_on(on("pad", 4, 60, 70))
        out.note_off(off("pad", 4, 60))
        assert midi_probe.wait_for(2) == [(0x94, 60, 70), (0x84, 60, 64)]
    finally:
        out.close()


def test_list_ports_finds_the_jack_inputs_we_can_play_into(
    jack_server: JackServer, midi_probe: MidiProbe
) -> None:
    jack_name = midi_probe.listen("Synth In")

    assert jack_name in list_ports("jack")


def test_each_channel_gets_its_program_and_its_tracks_pan_volume_and_reverb_at_start(
    midi_out: MidiOut, heard: MidiProbe
) -> None:
    midi_out.send_programs()

    # Exactly these: the drums' channel (GM's kit) gets no program change; the bed's
    # bass, chords and pad get theirs on their own channels, with the mix of the track
    # each stands in for, so a GM synth places the whole piece as the speakers do.
    expected = [
        *TRACKS_SETUP,
        (0xCA, 38),
        *mix(10, 100, 64, 0),
        (0xCB, 4),
        *mix(11, 94, 39, 32),
        (0xCC, 89),
        *mix(12, 89, 93, 44),
    ]
    assert heard.settle(len(expected)) == expected


def test_clock_start_ticks_and_stop_arrive_as_midi_realtime_bytes(
    midi_out: MidiOut, heard: MidiProbe
) -> None:
    midi_out.clock_start()
    for _ in range(24):  # one beat at 24 ppqn
        midi_out.clock_tick()
    midi_out.clock_stop()

    assert heard.wait_for(26) == [(0xFA,), *[(0xF8,)] * 24, (0xFC,)]


def test_panic_ends_every_sounding_note_and_sends_all_notes_off_on_every_channel_used(
    midi_out: MidiOut, heard: MidiProbe
) -> None:
    midi_out.note_on(on("bass", 0, 40, 104))
    midi_out.note_on(on("pad", 4, 60, 70))
    midi_out.note_on(on("drums", 9, 36, 110))
    midi_out.note_on(on("percussion", 9, 36, 100))  # the same key struck by two tracks
    midi_out.note_on(on("bass", 10, 36, 100))  # the bed's bass line, on its own channel
    midi_out.note_off(off("drums", 9, 36))
    heard.wait_for(6)
    heard.clear()

    midi_out.panic()

    ended = [(0x80, 40, 64), (0x84, 60, 64), (0x89, 36, 64), (0x8A, 36, 64)]
    expected = [*ended, *all_notes_off(CHANNELS)]
    assert heard.settle(len(expected)) == expected

    heard.clear()
    midi_out.panic()  # nothing sounds any more: only the belt-and-braces CC 123
    assert heard.settle(len(CHANNELS)) == all_notes_off(CHANNELS)


def test_close_ends_sounding_notes_before_the_port_goes_and_later_calls_do_nothing(
    jack_server: JackServer, heard: MidiProbe, midi_out: MidiOut
) -> None:
    midi_out.note_on(on("lead", 2, 72, 96))
    heard.wait_for(1)
    heard.clear()

    midi_out.close()
    expected = [(0x82, 72, 64), *all_notes_off(CHANNELS)]
    assert heard.settle(len(expected)) == expected
    assert not midi_out.ok

    heard.clear()
    midi_out.note_on(on("lead", 2, 74, 96))  # a closed rtmidi port would crash if sent to
    midi_out.clock_tick()
    midi_out.panic()
    midi_out.close()
    assert heard.settle() == []


def test_a_port_name_that_matches_nothing_raises_oserror_naming_the_ports_seen(
    jack_server: JackServer, midi_probe: MidiProbe
) -> None:
    midi_probe.listen("Synth In")

    with pytest.raises(OSError, match="no-such-synth") as raised:
        MidiOut.open("no-such-synth", api="jack")

    assert f"'{midi_probe.client_name}:Synth In'" in str(raised.value)


def test_an_unknown_or_uncompiled_midi_api_raises_oserror_saying_why() -> None:
    with pytest.raises(OSError, match=r"unknown MIDI API 'pulse'.*jack"):
        MidiOut.open(virtual="x", api="pulse")

    compiled = set(rtmidi.get_compiled_api())
    for ours, rtmidi_api in APIS.items():
        if rtmidi_api not in compiled:  # e.g. coremidi and winmm on Linux
            with pytest.raises(OSError, match="not compiled in"):
                MidiOut.open(virtual="x", api=ours)


def test_a_jack_server_that_is_not_running_gives_oserror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "dialjam-nobody-runs-this")

    with pytest.raises(OSError, match="JACK server not running"):
        MidiOut.open(virtual="x", api="jack")
    with pytest.raises(OSError, match="'jack' is unavailable"):
        list_ports("jack")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "stop"])
def test_a_jack_server_going_away_mid_show_turns_midi_off_once_without_hanging_or_raising(
    how: signal.Signals,
    jack_server: JackServer,
    heard: MidiProbe,
    midi_out: MidiOut,
    caplog: pytest.LogCaptureFixture,
) -> None:
    midi_out.note_on(on("bass", 0, 40, 104))
    heard.wait_for(1)
    # RtMidi blocks forever, holding the GIL, once its buffer to a dead JACK server is
    # full, where no pytest timeout can interrupt it: dump the stacks and exit instead.
    faulthandler.dump_traceback_later(20, exit=True)
    try:
        jack_server.kill(how)
        deadline = time.monotonic() + 10.0  # the watchdog looks every few ms; a busy box is slow
        while midi_out.ok and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not midi_out.ok, "MidiOut did not notice the JACK server die"

        # More than RtMidi's 16 KiB ring buffer holds (about 2300 notes).
        with caplog.at_level(logging.ERROR, logger="billboard.midi_out"):
            for step in range(3000):
                midi_out.note_on(on("bass", 0, 40 + step % 12, 100))
                midi_out.clock_tick()
                midi_out.note_off(off("bass", 0, 40 + step % 12))
            midi_out.send_programs()
            midi_out.panic()
            midi_out.close()
    finally:
        faulthandler.cancel_dump_traceback_later()

    failures = [r for r in caplog.records if r.name == "billboard.midi_out"]
    assert len(failures) == 1
    assert OUT in failures[0].getMessage()
    assert "JACK server shut down" in failures[0].getMessage()


class UnpluggedPort:
    """A mido-like port that works for `works_for` messages, then raises as an
    unplugged USB synth does."""

    name = "USB synth"

    def __init__(self, works_for: int) -> None:
        self.works_for = works_for
        self.sent: list[Any] = []
        self.attempts = 0
        self.closed = False

    def send(self, msg: Any) -> None:
        self.attempts += 1
        if len(self.sent) >= self.works_for:
            raise OSError("MidiOutAlsa::sendMessage: error sending MIDI message to port.")
        self.sent.append(msg)

    def close(self) -> None:
        self.closed = True


def test_a_port_whose_send_raises_is_dropped_after_one_message_and_later_calls_are_no_ops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = UnpluggedPort(works_for=2)
    out = MidiOut(port)

    with caplog.at_level(logging.ERROR, logger="billboard.midi_out"):
        out.note_on(on("bass", 0, 40, 104))
        out.note_on(on("lead", 2, 72, 96))
        out.note_on(on("pad", 4, 60, 70))  # the synth is unplugged here
        assert not out.ok
        out.note_off(off("bass", 0, 40))
        out.clock_tick()
        out.send_programs()
        out.panic()
        out.close()

    assert port.attempts == 3  # nothing was tried after the failure
    assert port.closed
    [failure] = [r for r in caplog.records if r.name == "billboard.midi_out"]
    assert "USB synth" in failure.getMessage()
    assert "error sending MIDI message" in failure.getMessage()


def test_the_beds_parts_go_out_on_their_own_channels_with_their_own_programs() -> None:
    port = UnpluggedPort(works_for=1000)  # a synth that stays plugged in
    bed = (BedVoice("bass", 10, 33), BedVoice("pad", 12, 90))
    out = MidiOut(port, DEFAULT_TRACKS, bed=bed)

    out.send_programs()
    out.note_on(on("bass", 10, 36, 100))  # the bed's bass line
    out.note_on(on("bass", 0, 40, 104))  # a caller on the bass track, whose program is 38
    out.panic()

    sent = [tuple(msg.bytes()) for msg in port.sent]
    assert sent == [
        *TRACKS_SETUP,
        (0xCA, 33),  # the bed's bass: Electric Bass (finger), on channel 11
        *mix(10, 100, 64, 0),  # placed as the bass track is
        (0xCC, 90),  # the bed's pad: Pad 3 (polysynth), on channel 13
        *mix(12, 89, 93, 44),
        (0x9A, 36, 100),
        (0x90, 40, 104),
        (0x80, 40, 64),  # panic: each sounding note ends…
        (0x8A, 36, 64),
        *all_notes_off(TRACK_CHANNELS | {10, 12}),  # …then CC 123 on every channel, the bed's too
    ]


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_without_jackd_a_ci_run_fails_and_a_local_run_skips_saying_what_to_install(
    ci: str, outcome: type[BaseException], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.services import running_jack_server

    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PATH", str(tmp_path))  # no jackd on it

    with pytest.raises(outcome, match="apt-get install jackd2"), running_jack_server(tmp_path):
        pass
