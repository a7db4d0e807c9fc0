"""A watch on the JACK server: an event set the moment the server goes away.

When the JACK server dies, RtMidi 5's ``MidiOutJack::sendMessage`` does not raise but
spins, holding the GIL, until its 16 KiB ring buffer drains, which is never. So a JACK
MIDI port (``billboard/midi_out.py``) is paired with a second, silent JACK client whose
only job is to hear the server go away (``jack_on_shutdown``, through ctypes); from
then on the port sends nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import threading
from typing import Final

log = logging.getLogger(__name__)

_JACK_NO_START_SERVER: Final = 0x01  # jack/types.h JackNoStartServer: never spawn a server
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

    def close(self) -> None:
        """Close the watching client. Idempotent."""
        if self._client is not None:
            self._lib.jack_client_close(self._client)
            self._client = None
        _watched.pop(self._key, None)
