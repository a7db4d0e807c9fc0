"""A watch on the JACK server: an event set the moment the server goes away.

When the JACK server dies, RtMidi 5's ``MidiOutJack::sendMessage`` does not raise but
spins, holding the GIL, until its 16 KiB ring buffer drains, which is never. So a JACK
MIDI port (``billboard/midi_out.py``) is paired with a second, silent JACK client whose
only job is to hear the server go away (``jack_on_shutdown``, through ctypes); from
then on the port sends nothing.

The same client watches who our port is connected to (`follow`): a synth patched in
mid-show is told, so MidiOut can set it up and put it in time. It polls
``jack_port_get_all_connections`` a few times a second from a thread of its own
(midi_follow.py, shared with the ALSA watch):
JACK's port-connect callback runs on libjack's notification thread, where calling
back into JACK is not allowed, and a poll needs no C callback kept alive.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import re
import threading
from collections.abc import Callable
from typing import Final

from .midi_follow import Follower, Links

log = logging.getLogger(__name__)

_JACK_NO_START_SERVER: Final = 0x01  # jack/types.h JackNoStartServer: never spawn a server
_JACK_PORT_IS_OUTPUT: Final = 0x2  # jack/types.h JackPortIsOutput
_JACK_MIDI_TYPE: Final = b"8 bit raw midi"  # jack/types.h JACK_DEFAULT_MIDI_TYPE
FOLLOW_POLL_S: Final = 0.1  # how often `follow` looks at our port's connections
_ShutdownCallback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# jack_on_shutdown hands back a void* we choose: a key into this table, so that the one
# C callback below (module-level, never freed while libjack may call it) finds its event.
_watched: dict[int, threading.Event] = {}
_watch_keys = itertools.count(1)


def _jack_shutdown(key: int | None) -> None:
    # Runs on libjack's thread: only set the flag; MidiOut logs on its own next call.
    event = _watched.get(key or 0)
    if event is not None:
        event.set()


_on_jack_shutdown = _ShutdownCallback(_jack_shutdown)


def _load_libjack() -> ctypes.CDLL | None:
    """The libjack python-rtmidi already uses (its wheels bundle one), else the system's."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and "libjack" in fields[5]:
                    paths.append(fields[5].strip())
    except OSError:  # not Linux: the dynamic loader's search is all we have
        pass
    system = ctypes.util.find_library("jack")
    for path in [*dict.fromkeys(paths), *([system] if system else [])]:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


class JackWatch:
    """A silent JACK client whose shutdown callback tells us the server has gone."""

    def __init__(self, lib: ctypes.CDLL, client: int, key: int) -> None:
        self.gone = threading.Event()
        self._lib = lib
        self._client: int | None = client
        self._key = key
        _watched[key] = self.gone
        self._lock = threading.Lock()  # the client, between `follow`'s thread and close
        self._follower: Follower | None = None

    @classmethod
    def start(cls, name: str) -> JackWatch | None:
        """Watch the JACK server this process's clients use, as a client called `name`;
        None (and a warning) when that is impossible, as MIDI still works without it."""
        lib = _load_libjack()
        if lib is None:
            log.warning("libjack not found: a JACK server crash mid-show could hang MIDI out")
            return None
        try:
            return cls._open_client(lib, name)
        except (AttributeError, OSError, ctypes.ArgumentError) as err:  # an odd libjack
            log.warning("cannot watch the JACK server (%s): a crash could hang MIDI out", err)
            return None

    @classmethod
    def _open_client(cls, lib: ctypes.CDLL, name: str) -> JackWatch | None:
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        lib.jack_on_shutdown.restype = None
        lib.jack_on_shutdown.argtypes = [ctypes.c_void_p, _ShutdownCallback, ctypes.c_void_p]
        lib.jack_activate.argtypes = [ctypes.c_void_p]
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        names = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_get_ports.restype = names
        lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.jack_get_ports.argtypes += [ctypes.c_ulong]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_get_all_connections.restype = names
        lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_free.argtypes = [ctypes.c_void_p]
        status = ctypes.c_int(0)
        client = lib.jack_client_open(name.encode(), _JACK_NO_START_SERVER, ctypes.byref(status))
        if not client:
            log.warning("cannot watch the JACK server (status 0x%x)", status.value)
            return None
        key = next(_watch_keys)
        watch = cls(lib, client, key)
        lib.jack_on_shutdown(client, _on_jack_shutdown, key)
        # Activated (with nothing to process) because some JACK implementations only
        # run the thread that notices a dead server for active clients.
        lib.jack_activate(client)
        return watch

    def follow(
        self,
        client: str,
        own: str,
        target: str | None,
        on_connect: Callable[[list[str]], None],
    ) -> bool:
        """Call `on_connect` with the ports newly connected to our MIDI output `own` of
        the rtmidi client `client`, from a thread of ours, until `close`; False (and a
        warning) when our port cannot be found.

        rtmidi does not say which client is ours: it is the one named `client` (or
        `client`-01 …, JACK's names for a second client of one name) whose port `own`
        is connected to `target`, when we opened a port onto a synth. Two billboards
        on one JACK server with the same virtual port name are told apart by nothing;
        then a connection to either resyncs both, which does no harm."""
        pattern = rf"^{re.escape(client)}(-[0-9]+)?:{re.escape(own)}$"
        with self._lock:
            ports = self._names(
                self._lib.jack_get_ports(
                    self._client, pattern.encode(), _JACK_MIDI_TYPE, _JACK_PORT_IS_OUTPUT
                )
            )
            if target is not None:
                ports = [port for port in ports if target in self._connections(port)] or ports
            connected = {port: self._connections(port) for port in ports}
        if not ports:
            log.warning("cannot find our JACK MIDI port %r: connections go unnoticed", own)
            return False
        known = {(port, peer) for port, peers in connected.items() for peer in peers}
        self._follower = Follower(
            lambda: self._look(ports), on_connect, known, FOLLOW_POLL_S
        ).start()
        return True

    def _look(self, ports: list[str]) -> Links | None:
        """What our `ports` are connected to now (midi_follow.py), None once gone."""
        if self.gone.is_set():
            return None
        with self._lock:
            if self._client is None:
                return None
            return {(port, peer) for port in ports for peer in self._connections(port)}

    def _connections(self, port: str) -> list[str]:
        handle = self._lib.jack_port_by_name(self._client, port.encode())
        if not handle:
            return []
        return self._names(self._lib.jack_port_get_all_connections(self._client, handle))

    def _names(self, array: ctypes._Pointer[ctypes.c_char_p]) -> list[str]:
        """The strings of a NULL-terminated array libjack made, which is then freed."""
        if not array:
            return []
        out: list[str] = []
        for item in itertools.count():
            name = array[item]
            if name is None:
                break
            out.append(name.decode(errors="replace"))
        self._lib.jack_free(ctypes.cast(array, ctypes.c_void_p))
        return out

    def close(self) -> None:
        """Stop following and close the watching client. Idempotent."""
        if self._follower is not None:
            self._follower.close()
        with self._lock:
            if self._client is not None:
                self._lib.jack_client_close(self._client)
                self._client = None
        _watched.pop(self._key, None)
