"""A JACK server of our own for bench/grid_timing.py, and a JACK MIDI input in a
process of its own that stamps what it hears.

    python bench/grid_jack.py      (the probe's process; grid_timing.py starts it)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import rtmidi

PROBE_CLIENT = "dialjam-bench-probe"
PROBE_PORT = "grid in"
JACK_PERIOD_FRAMES = 256
JACK_RATE = 48_000


@dataclass
class Jack:
    """A jackd with the dummy driver on a server name of its own, made this process's
    default JACK server while it runs (as tests/services.py does, without pytest)."""

    name: str = field(default_factory=lambda: f"djbench{os.getpid()}x{uuid.uuid4().hex[:6]}")
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, timeout: float = 10.0) -> str | None:
        """Start jackd; None once a JACK MIDI client can join it, else why not."""
        jackd = shutil.which("jackd")
        if jackd is None:
            return "jackd not found (apt-get install jackd2)"
        self.log_path = Path(tempfile.gettempdir()) / f"jackd-{self.name}.log"
        env = {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_AUDIO_RESERVATION": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    jackd,
                    "--no-realtime",
                    "-n",
                    self.name,
                    "-d",
                    "dummy",
                    "-r",
                    str(JACK_RATE),
                    "-p",
                    str(JACK_PERIOD_FRAMES),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        deadline = time.monotonic() + timeout
        with quiet_stderr():  # libjack says "Cannot connect to server" until it is up
            while True:
                try:
                    rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="dialjam-bench-ready").delete()
                    return None
                except rtmidi.RtMidiError as err:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log_text = self.log_path.read_text(errors="replace").strip()
                        return f"jackd did not start ({err}); its log: {log_text[-300:]}"
                    time.sleep(0.02)

    def stop(self) -> None:
        """Stop it (SIGTERM, SIGKILL if it lingers) and clear what it left in /dev/shm."""
        os.environ.pop("JACK_DEFAULT_SERVER", None)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for leftover in Path("/dev/shm").glob(f"*_{self.name}_*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 (where C libraries write) to /dev/null for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def jack_turn(timeout: float) -> Iterator[bool]:
    """Take the lock the test suite's JACK servers take turns with (jack2 servers of one
    user share state in /dev/shm); yields False when it stays busy for `timeout`."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield True
        return
    directory = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    with open(directory / f"dialjam-tests-jackd-{os.getuid()}.lock", "a+b") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Probe:
    """A JACK MIDI input in a process of its own (rtmidi's own callback) that stamps each
    message with ``time.monotonic()`` on arrival: CLOCK_MONOTONIC is the same clock in
    every process. In our own process its callback, which runs on JACK's process thread,
    would wait for the GIL behind the display and the scheduler: JACK's cycle then
    overruns (we saw messages repeated and lost) and it would steal the GIL from the
    scheduler being measured."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, tuple[int, ...]]] = []
        self._child = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._child.stdout is not None
        ready = self._child.stdout.readline().strip()
        if ready != "ready":
            self._child.kill()
            raise OSError(f"the JACK MIDI probe did not start ({ready or 'no answer'})")

    def collect(self) -> None:
        """Stop listening and read what was heard."""
        if self._child.poll() is not None:
            return
        out, _ = self._child.communicate("stop\n", timeout=10)
        for line in out.splitlines():
            stamp, *data = line.split()
            self.arrivals.append((float(stamp), tuple(int(b) for b in data)))

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
            self._child.wait(5)


def probe_child() -> int:
    """The probe's process: listen on PROBE_PORT until a line (or EOF) on stdin, then
    print one line per message: its arrival time and its bytes."""
    heard: list[tuple[float, list[int]]] = []

    def on_message(event: tuple[list[int], float], data: object = None) -> None:
        heard.append((time.monotonic(), event[0]))

    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=PROBE_CLIENT)
    midi_in.set_callback(on_message)
    midi_in.open_virtual_port(PROBE_PORT)
    print("ready", flush=True)
    sys.stdin.readline()
    midi_in.cancel_callback()
    midi_in.close_port()
    midi_in.delete()
    sys.stdout.write("".join(f"{t:.9f} {' '.join(map(str, m))}\n" for t, m in heard))
    return 0


if __name__ == "__main__":
    sys.exit(probe_child())
