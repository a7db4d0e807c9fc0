"""MIDI output ports through python-rtmidi: listing them, and opening ours as "dialjam".

rtmidi names every client it makes; mido's backend only passes a client name for a
virtual port, so a port opened onto a synth showed as "RtMidiOut Client:RtMidi
output". Here every client is called `CLIENT_NAME` and the port we open onto a synth
`OWN_PORT` (JACK: ``dialjam:out``; ALSA: client "dialjam", port "out"); a virtual
port keeps the name it is given (``dialjam:NAME``).

An API that is not there (ALSA without ``/dev/snd/seq``, JACK without a server) is
said in words an operator can act on, never in rtmidi's ("MidiOutAlsa::initialize:
…"); the C libraries' own complaints on stderr are kept off the terminal meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import rtmidi

log = logging.getLogger(__name__)

CLIENT_NAME: Final = "dialjam"  # every rtmidi client we make (JACK: dialjam:PORT)
OWN_PORT: Final = "out"  # the name of the port we open onto a synth
# Our names for rtmidi's APIs (the config's `midi_api`).
APIS: Final = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
# What to do when an API is missing, in an operator's words.
MISSING: Final = {
    "alsa": "no ALSA sequencer here (/dev/snd/seq is missing: `sudo modprobe snd-seq`, "
    "or this machine has no sound devices)",
    "jack": "JACK server not running (start one: `jackd -d dummy` for MIDI alone, "
    "`jackd -d alsa` with a sound card, qjackctl, or PipeWire's JACK)",
}


@dataclass(frozen=True, slots=True)
class PortList:
    """What one API offers: its output ports, or why it offers none."""

    api: str
    ports: tuple[str, ...] = ()
    problem: str | None = None


class RtPort:
    """An open rtmidi output: what `billboard.midi_out.MidiOut` sends through."""

    def __init__(self, rt: Any, name: str, api: str, own: str) -> None:
        self._rt = rt
        self.name = name  # the synth's port, or the virtual port's own name
        self.api = api  # our name of the API: "jack", "alsa" …
        self.own = own  # our port's name on that API (JACK: without the client part)

    def send(self, msg: Any) -> None:
        self._rt.send_message(msg.bytes())

    def close(self) -> None:
        self._rt.close_port()
        self._rt.delete()


def available_apis() -> list[str]:
    """Our names of the APIs this python-rtmidi was built with, in rtmidi's order."""
    ids = {value: name for name, value in APIS.items()}
    return [ids[api] for api in rtmidi.get_compiled_api() if api in ids]


def survey(api: str | None = None) -> list[PortList]:
    """The output ports of `api`, or of every API built in when None."""
    out = []
    for name in [_checked(api)] if api is not None else available_apis():
        try:
            out.append(PortList(name, tuple(_ports(name))))
        except OSError as err:
            out.append(PortList(name, problem=str(err)))
    return out


def list_ports(api: str | None = None) -> list[str]:
    """The names of the output ports `open_port` can connect to on `api` (None: the
    first API that is there). Raises OSError, with the reason, when none is."""
    lists = survey(api)
    for found in lists:
        if found.problem is None:
            return list(found.ports)
    raise OSError(unavailable(lists, api))


def unavailable(lists: list[PortList], api: str | None) -> str:
    """Why no API in `lists` is there, in one sentence."""
    if api is not None:
        return f"MIDI API {api!r} is unavailable: {lists[0].problem}"
    reasons = " and ".join(f"{found.problem}" for found in lists)
    return f"no MIDI system to play into: {reasons}"


def open_port(port: str | None, virtual: str | None, api: str | None) -> RtPort:
    """Open the output port whose name is or contains `port` (case-insensitive; the
    first port when None), or create a virtual port named `virtual`, on `api` (None:
    the first API that is there, or for `port`, the first whose ports match).
    Raises OSError saying why not, naming the ports it saw when none matches."""
    lists = survey(api)
    if all(found.problem is not None for found in lists):
        raise OSError(f"cannot open a MIDI output: {unavailable(lists, api)}")
    usable = [found for found in lists if found.problem is None]
    chosen = usable[0]
    if virtual is None and port is not None:
        chosen = next((f for f in usable if _choose(port, f.ports) is not None), chosen)
    try:
        rt = _client(chosen.api)
        try:
            if virtual is not None:
                rt.open_virtual_port(virtual)
                return RtPort(rt, virtual, chosen.api, virtual)
            names = list(rt.get_ports())
            target = _choose(port, names)
            if target is None:
                raise OSError(_no_match(port, names, chosen.api))
            rt.open_port(names.index(target), OWN_PORT)
            return RtPort(rt, target, chosen.api, OWN_PORT)
        except BaseException:
            rt.delete()
            raise
    except (ValueError, rtmidi.RtMidiError) as err:  # rtmidi's own words need context
        raise OSError(f"cannot open a MIDI output on {chosen.api!r}: {err}") from err


def _checked(api: str) -> str:
    name = api.lower()
    if name not in APIS:
        raise OSError(f"unknown MIDI API {api!r}: use one of {', '.join(APIS)}")
    if name not in available_apis():
        raise OSError(f"MIDI API {api!r} is not compiled in this python-rtmidi")
    return name


def _client(api: str) -> Any:
    """An rtmidi output client named `CLIENT_NAME` on `api`; OSError when it is not there."""
    try:
        with _quiet_stderr():
            return rtmidi.MidiOut(APIS[api], name=CLIENT_NAME)
    except rtmidi.RtMidiError as err:
        raise OSError(MISSING.get(api, str(err))) from err


def _ports(api: str) -> list[str]:
    rt = _client(api)
    try:
        return list(rt.get_ports())
    finally:
        rt.delete()


def _choose(wanted: str | None, names: tuple[str, ...] | list[str]) -> str | None:
    """The port name `wanted` designates: an exact (case-insensitive) name first, else
    the first name that contains it; the first port when `wanted` is None."""
    if wanted is None:
        return names[0] if names else None
    folded = wanted.casefold()
    for name in names:
        if name.casefold() == folded:
            return name
    matches = [name for name in names if folded in name.casefold()]
    if len(matches) > 1:
        log.info("MIDI port %r matches %s; using %r", wanted, matches, matches[0])
    return matches[0] if matches else None


def _no_match(wanted: str | None, names: list[str], api: str) -> str:
    if not names:
        return f"no MIDI output ports on {api!r}"
    seen = ", ".join(repr(name) for name in names)
    return f"no MIDI output port matches {wanted!r}; {api!r} has: {seen}"


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Keep libasound's and libjack's complaints ("ALSA lib seq_hw.c:466: … failed",
    "Cannot connect to server socket") off the terminal while an API is tried: the
    caller says what is wrong in words of its own. File descriptor 2 itself, as the C
    libraries write there; for the few milliseconds a client takes to open."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr to protect
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
