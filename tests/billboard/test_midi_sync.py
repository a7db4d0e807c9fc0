"""A musician's MIDI against a real JACK server: our port is "dialjam", a synth patched
in mid-show is set up and put in time, and the port list says what is there.

The show is the real thing minus the relay and the screen: the engine on the
scheduler's thread, playing into `MidiOut` and clocking it, as ``billboard/show.py``
wires them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rtmidi

from billboard.door import Door
from billboard.engine import Engine, EngineConfig
from billboard.engine.roles import channel_setup
from billboard.midi_out import MidiOut
from billboard.scheduler import Scheduler

if TYPE_CHECKING:
    from tests.services import JackServer, MidiProbe

REPO = Path(__file__).resolve().parents[2]
OUT = "synth-out"  # our virtual output port: dialjam:synth-out
SONG_POSITION, CONTINUE, START, CLOCK = 0xF2, 0xFB, 0xFA, 0xF8


def expected_setup(midi: MidiOut) -> list[tuple[int, ...]]:
    """What `send_programs` sends, byte for byte (tests/billboard/test_midi.py checks
    it against figures worked out by hand)."""
    out: list[tuple[int, ...]] = []
    for _, channel, program, controls in channel_setup(midi.tracks, midi.bed):
        if program is not None:
            out.append((0xC0 | channel, program))
        out += [(0xB0 | channel, control, value) for control, value in controls]
    return out


class Show:
    """The engine on the scheduler's thread, into MidiOut, with its beat clock."""

    def __init__(self, midi: MidiOut) -> None:
        self.midi = midi
        # The groove bed plays, so notes go out around the sync as they do on the night.
        self.engine = Engine(EngineConfig(bpm=120.0, style="house"), start=time.monotonic())
        self.first_clock_at = self.engine.grid.time_of(self.engine.rendered + 1)
        self.scheduler = Scheduler(self.engine, [midi], midi_clock=midi)
        midi.send_programs()  # as python -m billboard does at start
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()


@pytest.fixture
def show(jack_server: JackServer) -> Iterator[Show]:
    running = Show(MidiOut.open(virtual=OUT, api="jack"))
    yield running
    running.stop()


def sync_in(heard: list[tuple[int, ...]], setup: list[tuple[int, ...]]) -> tuple[int, int]:
    """Where the setup starts in `heard`, and the 16th its Song Position names, checked
    to be the whole sync: the setup, Song Position, Continue, then the next clock."""
    starts = [i for i in range(len(heard)) if heard[i : i + len(setup)] == setup]
    assert starts, f"the channel setup never arrived whole: {heard}"
    at = starts[0]
    position_at = at + len(setup)
    song_position = heard[position_at]
    assert song_position[0] == SONG_POSITION, heard[position_at:]
    assert heard[position_at + 1] == (CONTINUE,)
    assert heard[position_at + 2] == (CLOCK,)  # it plays on from this very clock
    return at, song_position[1] | song_position[2] << 7


def test_a_synth_patched_in_mid_show_gets_its_sounds_and_the_song_position_then_the_clock(
    show: Show, midi_probe: MidiProbe
) -> None:
    time.sleep(1.0)  # the show has been on for a while: 8 16ths at 120 BPM

    port = midi_probe.connect(OUT)
    heard = midi_probe.wait_for(1)  # the bed's notes and the clock, whatever came first
    setup = expected_setup(show.midi)
    deadline = time.monotonic() + 20.0  # a busy machine: generous, never a real-time claim
    while time.monotonic() < deadline:
        heard = midi_probe.wait_for(len(heard) + 1)
        if any(heard[i : i + len(setup)] == setup for i in range(len(heard))):
            break
    heard = midi_probe.wait_for(len(heard) + 3)
    received_by = time.monotonic()

    assert port == f"dialjam:{OUT}"  # our client, named for the show
    assert show.midi is not None and show.midi.follows == "JACK"  # the summary says so
    at, sixteenth = sync_in(heard, setup)
    # The position is the show's (tests/billboard/test_scheduler.py checks it on
    # simulated time): mid-show, not the top, and a 16th whose clock was due before we
    # heard it, as no clock leaves early. Causal bounds only, never a timing.
    assert sixteenth > 0
    step = show.engine.grid.step_duration
    assert show.first_clock_at + sixteenth * step <= received_by + 1e-3
    # Nothing from before the sync set the synth up: it arrived once, after connecting.
    assert not any(message[0] & 0xF0 == 0xC0 for message in heard[:at])
    assert (START,) not in heard


def test_the_operators_midi_sync_command_sends_the_setup_and_position_again(
    show: Show, midi_probe: MidiProbe
) -> None:
    midi_probe.connect(OUT)
    time.sleep(0.5)
    midi_probe.clear()

    # As the relay hands the billboard a console's command from NAME:control.
    [command] = Door(b"k" * 32).admit_command({"event": "command", "name": "midi_sync"})
    show.scheduler.submit(command)

    setup = expected_setup(show.midi)
    deadline = time.monotonic() + 20.0
    heard = midi_probe.wait_for(1)
    while not any(heard[i : i + len(setup)] == setup for i in range(len(heard))):
        assert time.monotonic() < deadline, f"no sync after the command: {heard}"
        heard = midi_probe.wait_for(len(heard) + 1)
    heard = midi_probe.wait_for(len(heard) + 3)
    _, sixteenth = sync_in(heard, setup)
    assert sixteenth > 0


def test_a_port_opened_onto_a_synth_is_dialjam_out_and_plays_into_it(
    jack_server: JackServer, midi_probe: MidiProbe
) -> None:
    midi_probe.listen("Synth In")

    midi = MidiOut.open("synth in", api="jack")
    try:
        seen = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="dialjam-test-lister")
        try:
            assert "dialjam:out" in seen.get_ports()
        finally:
            seen.delete()
        midi.send_programs()
        assert midi_probe.settle(len(expected_setup(midi))) == expected_setup(midi)
    finally:
        midi.close()


class Port:
    """A port that keeps what it is sent."""

    name = "synth"

    def __init__(self) -> None:
        self.sent: list[tuple[int, ...]] = []

    def send(self, msg: Any) -> None:
        self.sent.append(tuple(msg.bytes()))

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("sixteenths", "position"),
    [
        (0, [(START,)]),  # the top: Start
        (200, [(SONG_POSITION, 200 & 0x7F, 200 >> 7), (CONTINUE,)]),  # LSB first, 7 bits each
        # 14 bits hold 1024 bars: past them the position wraps on a bar line.
        (16384 + 16 * 3 + 5, [(SONG_POSITION, 53, 0), (CONTINUE,)]),
        (16384 * 2, [(START,)]),
    ],
)
def test_a_sync_is_the_setup_then_the_song_position_in_midi_beats_and_continue(
    sixteenths: int, position: list[tuple[int, ...]]
) -> None:
    port = Port()
    midi = MidiOut(port)

    midi.clock_sync(sixteenths)

    assert port.sent == [*expected_setup(midi), *position]


def list_midi_ports(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billboard", "--list-midi-ports"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_list_midi_ports_lists_the_jack_ports_a_synth_offers(
    jack_server: JackServer, midi_probe: MidiProbe
) -> None:
    jack_name = midi_probe.listen("Synth In")

    done = list_midi_ports({"JACK_DEFAULT_SERVER": jack_server.name})

    assert done.returncode == 0, done.stderr
    assert "jack: 1 MIDI output port(s) (--midi-api jack)" in done.stdout
    assert f"  {jack_name}" in done.stdout.splitlines()
    assert "MidiOut" not in done.stdout + done.stderr  # rtmidi's own words stay inside


def test_list_midi_ports_without_alsa_or_jack_says_so_and_how_to_get_one(tmp_path: Path) -> None:
    # No ALSA sequencer: libasound finds no "default" sequencer in an empty
    # configuration, as on a machine without /dev/snd. No JACK server of that name.
    empty = tmp_path / "asound.conf"
    empty.write_text("")
    env = {"ALSA_CONFIG_PATH": str(empty), "JACK_DEFAULT_SERVER": "dialjam-nobody-runs-this"}

    done = list_midi_ports(env)

    assert done.returncode == 1  # documented: no MIDI system to play into
    assert done.stdout == ""
    message = done.stderr.strip()
    assert message.startswith("dialjam billboard: no MIDI system to play into:")
    assert "no ALSA sequencer here" in message
    assert "sudo modprobe snd-seq" in message
    assert "JACK server not running (start one: `jackd -d dummy`" in message
    # Neither rtmidi's words nor libasound's and libjack's own complaints leak.
    assert "MidiInAlsa" not in message and "MidiOutAlsa" not in message
    assert "ALSA lib" not in message and "Cannot connect to server" not in message
    assert len(message.splitlines()) == 1
