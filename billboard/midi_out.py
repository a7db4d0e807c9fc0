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

from .jack_watch import JackWatch

log = logging.getLogger(__name__)

# Our names for rtmidi's APIs (the config's `midi_api`), mapped to mido's rtmidi names.
APIS: Final = {
    "alsa": "LINUX_ALSA",
    "jack": "UNIX_JACK",
    "coremidi": "MACOSX_CORE",
    "winmm": "WINDOWS_MM",
}
CLIENT_NAME: Final = "dialjam"  # the client name a virtual port shows (JACK: dialjam:PORT)
ALL_NOTES_OFF: Final = 123  # MIDI 1.0 channel mode message, CC 123 (value 0)
NOTE_OFF_VELOCITY: Final = 64  # MIDI 1.0: the release velocity to send when there is none
# Before closing: a few JACK cycles (a 1024-frame period at 48 kHz lasts 21 ms).
CLOSE_GRACE_S: Final = 0.05


class OutputPort(Protocol):
    """What MidiOut needs of a port: a mido output port satisfies it."""

    name: str

    def send(self, msg: Any) -> None: ...
    def close(self) -> None: ...


def list_ports(api: str | None = None) -> list[str]:
    """The names of the output ports `MidiOut.open` can connect to on `api`.

    Raises OSError, with the reason, when the API is unknown or unavailable (e.g. ALSA
    without /dev/snd, JACK without a running server).
    """
    backend = _backend(api)
    try:
        return list(backend.get_output_names())
    except (OSError, ValueError, rtmidi.RtMidiError) as err:
        raise OSError(f"MIDI API {_label(api)} is unavailable: {err}") from err


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
    ) -> None:
        self.name: str = str(port.name)
        self.tracks = tuple(tracks)
        self.bed = tuple(bed)
        self._port = port
        self._watch = jack_watch
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
        a virtual port named `virtual` that synths connect to.

        `api` is ``"alsa"``, ``"jack"``, ``"coremidi"``, ``"winmm"`` or None for
        rtmidi's default. With neither `port` nor `virtual`, the first port is used.
        `tracks` and `bed` are the channels and programs the show plays on.
        Raises OSError naming the ports it saw when none matches, or saying why the
        API is unavailable.
        """
        if port is not None and virtual is not None:
            raise ValueError("give either a port to connect to or a virtual port, not both")
        backend = _backend(api)
        try:
            if virtual is not None:
                mido_port = backend.open_output(virtual, virtual=True, client_name=CLIENT_NAME)
            else:
                mido_port = backend.open_output(_choose(port, list_ports(api), api))
        except OSError as err:
            if isinstance(err, rtmidi.RtMidiError):  # rtmidi's own words need context
                raise OSError(f"cannot open a MIDI output on {_label(api)}: {err}") from err
            raise
        except (ValueError, rtmidi.RtMidiError) as err:
            raise OSError(f"cannot open a MIDI output on {_label(api)}: {err}") from err
        jack = getattr(mido_port, "api", None) == "UNIX_JACK"
        watch = JackWatch.start(f"{CLIENT_NAME}-watch") if jack else None
        return cls(mido_port, tracks, bed=bed, jack_watch=watch)

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
            for _, channel, program, controls in channel_setup(self.tracks, self.bed):
                if program is not None:
                    self._send(mido.Message("program_change", channel=channel, program=program))
                for control, value in controls:
                    self._send(
                        mido.Message(
                            "control_change", channel=channel, control=control, value=value
                        )
                    )

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

    # -- inside the lock --

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


def _label(api: str | None) -> str:
    return repr(api) if api is not None else "rtmidi's default API"


def _backend(api: str | None) -> Any:
    """mido's rtmidi backend for `api` (not loaded yet: opening it finds out)."""
    if api is None:
        return mido.Backend("mido.backends.rtmidi")
    try:
        rt_api = APIS[api.lower()]
    except KeyError:
        known = ", ".join(APIS)
        raise OSError(f"unknown MIDI API {api!r}: use one of {known}") from None
    return mido.Backend(f"mido.backends.rtmidi/{rt_api}")


def _choose(wanted: str | None, names: list[str], api: str | None) -> str:
    """The port name `wanted` designates: an exact (case-insensitive) name first, else
    the first name that contains it."""
    if not names:
        raise OSError(f"no MIDI output ports on {_label(api)}")
    if wanted is None:
        return names[0]
    folded = wanted.casefold()
    for name in names:
        if name.casefold() == folded:
            return name
    matches = [name for name in names if folded in name.casefold()]
    if not matches:
        seen = ", ".join(repr(name) for name in names)
        raise OSError(f"no MIDI output port matches {wanted!r}; {_label(api)} has: {seen}")
    if len(matches) > 1:
        log.info("MIDI port %r matches %s; using %r", wanted, matches, matches[0])
    return matches[0]
