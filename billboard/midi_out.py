"""MIDI out: the billboard's notes and beat to the operator's synth (mido + python-rtmidi).

The only module that talks to a MIDI output. It sends what the scheduler hands it, at
the moment it is handed over (the scheduler owns time), and keeps the little state a
port needs to be a good citizen: which notes are sounding, so `panic` and `close`
leave no note stuck, and whether the port still works.

A port that fails mid-show never stops the show: the first failure is logged once,
`ok` turns False and every later call is a no-op (the speakers carry on). Under JACK
that needs a watch (``billboard/jack_watch.py``): RtMidi spins, holding the GIL, on a
dead JACK server instead of raising, so a JACK port stops sending once the watch has
heard the server go.

A synth patched in mid-show is set up and put in time (`clock_sync`): its programs and
mix, then where the song is (MIDI 1.0 Song Position Pointer and Continue), when the
scheduler next reaches a 16th. Under JACK the watch notices the new connection
itself, under ALSA the kernel's list of subscriptions does (``billboard/alsa_watch.py``,
both through ``billboard/midi_follow.py``); elsewhere (CoreMIDI, or ALSA without
``/proc/asound``) the operator asks for it: the console's "MIDI sync" button or the
billboard's R key (the ``midi_sync`` command).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final, Protocol

import mido
import rtmidi

from billboard.engine.bed import DEFAULT_VOICES, BedVoice
from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.roles import channel_setup
from billboard.engine.tracks import DEFAULT_TRACKS, TrackSpec

from .alsa_watch import AlsaWatch
from .jack_watch import JackWatch
from .midi_ports import APIS, CLIENT_NAME, list_ports, open_port

__all__ = ["APIS", "CLIENT_NAME", "MidiOut", "OutputPort", "list_ports"]

log = logging.getLogger(__name__)

ALL_NOTES_OFF: Final = 123  # MIDI 1.0 channel mode message, CC 123 (value 0)
NOTE_OFF_VELOCITY: Final = 64  # MIDI 1.0: the release velocity to send when there is none
# Before closing: a few JACK cycles (a 1024-frame period at 48 kHz lasts 21 ms).
CLOSE_GRACE_S: Final = 0.05
# MIDI 1.0: Song Position Pointer counts "MIDI beats" (16ths, 6 clocks each) in 14 bits.
SONG_POSITIONS: Final = 1 << 14


class OutputPort(Protocol):
    """What MidiOut needs of a port: a mido output port satisfies it."""

    name: str

    def send(self, msg: Any) -> None: ...
    def close(self) -> None: ...


class MidiOut:
    """One MIDI output for the show: notes, program changes, clock and panic.

    The channels it knows are the tracks' and the groove bed's (`bed`: its bass,
    chords and pad on channels of their own), for their programs and for panic.
    Build it with `MidiOut.open`; the constructor wraps a port that is already open (a
    mido output port, or anything with ``send`` and ``close``), which is how tests
    give it a port that fails. Safe to call from several threads.
    """

    def __init__(
        self,
        port: OutputPort,
        tracks: Sequence[TrackSpec] = DEFAULT_TRACKS,
        *,
        bed: Sequence[BedVoice] = DEFAULT_VOICES,
        jack_watch: JackWatch | None = None,
        alsa_watch: AlsaWatch | None = None,
    ) -> None:
        self.name: str = str(port.name)
        self.tracks = tuple(tracks)
        self.bed = tuple(bed)
        self._port = port
        self._watch = jack_watch
        self._alsa_watch = alsa_watch
        # Who notices a synth connected mid-show ("JACK", "ALSA, /proc/…"): None when
        # only the operator's R key or MIDI sync resends (the start summary says which).
        self.follows: str | None = None
        self._lock = threading.Lock()
        # (channel, note) → note-ons not yet ended. A count, not a set: drums and
        # percussion share channel 9, so the same key can be struck twice before an off.
        self._sounding: Counter[tuple[int, int]] = Counter()
        # Every channel we may sound on, for CC 123 at panic: known from the start, so a
        # panic also ends what a previous run left sounding there.
        self._channels = {track.channel for track in self.tracks}
        self._channels |= {voice.channel for voice in self.bed}
        self._failed = False
        self._closed = False
        self._sync_wanted = threading.Event()

    @classmethod
    def open(
        cls,
        port: str | None = None,
        *,
        virtual: str | None = None,
        api: str | None = None,
        tracks: Sequence[TrackSpec] = DEFAULT_TRACKS,
        bed: Sequence[BedVoice] = DEFAULT_VOICES,
    ) -> MidiOut:
        """Open the output port whose name contains `port` (case-insensitive), or create
        a virtual port named `virtual` that synths connect to; our client is named
        "dialjam" (``billboard/midi_ports.py``).

        `api` is ``"alsa"``, ``"jack"``, ``"coremidi"``, ``"winmm"`` or None for the
        first that is there. With neither `port` nor `virtual`, the first port is used.
        `tracks` and `bed` are the channels and programs the show plays on.
        Raises OSError naming the ports it saw when none matches, or saying why the
        API is unavailable.
        """
        if port is not None and virtual is not None:
            raise ValueError("give either a port to connect to or a virtual port, not both")
        rt_port = open_port(port, virtual, api)
        watch = JackWatch.start(f"{CLIENT_NAME}-watch") if rt_port.api == "jack" else None
        alsa = AlsaWatch() if rt_port.api == "alsa" else None
        out = cls(rt_port, tracks, bed=bed, jack_watch=watch, alsa_watch=alsa)
        # The target of a port opened onto a synth is connected already: only
        # connections made from now on are new followers.
        target = None if virtual is not None else rt_port.name
        if watch is not None and watch.follow(CLIENT_NAME, rt_port.own, target, out.connected):
            out.follows = "JACK"
        if alsa is not None and alsa.follow(CLIENT_NAME, rt_port.own, target, out.connected):
            out.follows = f"ALSA, {alsa.path}"
        return out

    @property
    def ok(self) -> bool:
        """False once the port has failed (or the JACK server has gone), or is closed."""
        gone = self._watch is not None and self._watch.gone.is_set()
        return not (self._failed or self._closed or gone)

    # -- what the show sends --

    def send_programs(self) -> None:
        """Set each channel for the start of the show (`roles.channel_setup`): the
        program of each melodic track, then of each pitched part of the bed, and the
        track's mix as GM controllers: volume (CC 7), pan (CC 10), reverb send (CC 91).
        A channel shared by two tracks keeps its first track's settings."""
        with self._lock:
            self._setup()

    # -- followers that join mid-show --

    def connected(self, peers: Sequence[str]) -> None:
        """`peers` were just connected to our port (the JACK watch's thread): ask the
        scheduler for a `clock_sync` on its next 16th."""
        log.info(
            "MIDI: %s connected to %s; sending it the programs and the song position",
            ", ".join(peers),
            self.name,
        )
        self._sync_wanted.set()

    def sync_requested(self) -> bool:
        """True once after `request_sync` (the scheduler asks before each 16th)."""
        if not self._sync_wanted.is_set():
            return False
        self._sync_wanted.clear()
        return True

    def clock_sync(self, sixteenths: int) -> None:
        """Bring followers that joined mid-show into the show, just before the clock
        that begins 16th `sixteenths` (counted from Start): every channel's setup as
        at the start (`send_programs`), then MIDI 1.0's Song Position Pointer (0xF2)
        and Continue (0xFB), so a follower plays on from that 16th at the next clock;
        Start (0xFA) when that is the top. Followers already running ignore both
        (MIDI 1.0: Continue and Song Position are for a stopped sequencer)."""
        # 14 bits hold 1024 bars; past that the position wraps on a bar line, so a
        # looping drum machine still lands on the right beat of the right bar.
        position = sixteenths % SONG_POSITIONS
        with self._lock:
            self._setup()
            if position == 0:
                self._send(mido.Message("start"))
            else:
                self._send(mido.Message("songpos", pos=position))
                self._send(mido.Message("continue"))

    def note_on(self, note: NoteOn) -> None:
        """Sound `note` now (its `time` is the scheduler's business)."""
        msg = mido.Message("note_on", channel=note.channel, note=note.note, velocity=note.velocity)
        with self._lock:
            if self._send(msg):
                self._channels.add(note.channel)
                if note.velocity > 0:  # MIDI 1.0: a note-on of velocity 0 is a note-off
                    self._sounding[(note.channel, note.note)] += 1
                else:
                    self._ended(note.channel, note.note)

    def note_off(self, note: NoteOff) -> None:
        """End `note` now."""
        msg = mido.Message(
            "note_off", channel=note.channel, note=note.note, velocity=NOTE_OFF_VELOCITY
        )
        with self._lock:
            if self._send(msg):
                self._ended(note.channel, note.note)

    # MIDI 1.0 system real-time messages: Start 0xFA, Timing Clock 0xF8 (24 per quarter
    # note), Stop 0xFC. A synth or drum machine following our clock starts from the top.

    def clock_start(self) -> None:
        """Send Start (0xFA): followers begin at the song's start on the next tick."""
        with self._lock:
            self._send(mido.Message("start"))

    def clock_tick(self) -> None:
        """Send one Timing Clock (0xF8); the scheduler sends 24 per beat."""
        with self._lock:
            self._send(mido.Message("clock"))

    def clock_stop(self) -> None:
        """Send Stop (0xFC)."""
        with self._lock:
            self._send(mido.Message("stop"))

    def panic(self) -> None:
        """Every note off: a note-off for each note we started, then CC 123 (All Notes
        Off) on every channel we use."""
        with self._lock:
            self._panic()

    def close(self) -> None:
        """All notes off, then close the port. Later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            if self._panic():  # a no-op on a failed port (`_send` says why, once)
                # JACK delivers on a later process cycle, and only to a port that still
                # exists then: closing at once can lose the notes-off just sent.
                time.sleep(CLOSE_GRACE_S)
            self._closed = True
            try:
                # After a JACK server crash this waits up to 1 s (RtMidi's closePort
                # waits a process cycle that never comes); only once, at the end.
                self._port.close()
            except Exception as err:
                log.warning("MIDI output %r did not close cleanly: %s", self.name, err)
            if self._watch is not None:
                self._watch.close()
            if self._alsa_watch is not None:
                self._alsa_watch.close()

    # -- inside the lock --

    def _setup(self) -> None:
        for _, channel, program, controls in channel_setup(self.tracks, self.bed):
            if program is not None:
                self._send(mido.Message("program_change", channel=channel, program=program))
            for control, value in controls:
                self._send(
                    mido.Message("control_change", channel=channel, control=control, value=value)
                )

    def _panic(self) -> bool:
        """Send the notes-off; True if anything was sent."""
        # Note-offs first: some synths ignore CC 123 (MIDI 1.0 lets a receiver in Omni
        # mode ignore it), none ignores a note-off. CC 123 then ends what we never knew
        # about, like a note whose note-on we sent before a restart.
        sent = False
        for channel, note in sorted(self._sounding):
            sent |= self._send(
                mido.Message("note_off", channel=channel, note=note, velocity=NOTE_OFF_VELOCITY)
            )
        for channel in sorted(self._channels):
            sent |= self._send(
                mido.Message("control_change", channel=channel, control=ALL_NOTES_OFF, value=0)
            )
        self._sounding.clear()
        return sent

    def _ended(self, channel: int, note: int) -> None:
        key = (channel, note)
        if self._sounding[key] > 1:
            self._sounding[key] -= 1
        else:
            del self._sounding[key]

    def _send(self, msg: Any) -> bool:
        """Send one message; on the first failure turn MIDI off for the rest of the show."""
        if self._failed or self._closed:
            # Never touch a failed or closed port: a closed rtmidi port segfaults on send.
            return False
        if self._watch is not None and self._watch.gone.is_set():
            self._fail("the JACK server shut down")
            return False
        try:
            self._port.send(msg)
        except (OSError, rtmidi.RtMidiError) as err:  # the device went away: a venue fact
            self._fail(str(err) or type(err).__name__)
            return False
        except Exception as err:  # not expected from a port, but the show goes on
            log.exception("MIDI output %r raised unexpectedly", self.name)
            self._fail(f"{type(err).__name__}: {err}")
            return False
        return True

    def _fail(self, reason: str) -> None:
        self._failed = True
        self._sounding.clear()
        log.error("MIDI output %r failed (%s); the show goes on without MIDI", self.name, reason)
