"""Real services for the tests: a JACK server, a JACK MIDI probe, FluidSynth.

Use it from a test module with ``pytest_plugins = ("tests.services",)`` (fixtures
``jack_server``, ``midi_probe``, ``fluidsynth``) or call the helpers directly.

The project's rule: with ``CI=true`` a test that needs a real service starts it and
FAILS when it cannot; elsewhere it skips, saying how to get the service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
import rtmidi

from tests.support.redis import RedisServer


def in_ci() -> bool:
    """True when the environment says CI=true (read at each call, so tests can set it)."""
    return os.environ.get("CI", "").lower() == "true"


# Where Debian's soundfont packages put a General MIDI bank, best first.
SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),  # timgm6mb-soundfont (small, fast to load)
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # fluid-soundfont-gm
    Path("/usr/share/sounds/sf2/default-GM.sf2"),  # whichever provides default-gm
)


def service_unavailable(what: str, how: str) -> NoReturn:
    """Fail under CI=true, skip elsewhere; `how` says how to get the service."""
    if in_ci():
        pytest.fail(f"{what} (CI=true: tests start their services) — {how}", pytrace=False)
    pytest.skip(f"{what} — {how}")


def need_tool(tool: str, how: str) -> str:
    """The path of `tool`; without it a CI run fails and a local run skips."""
    path = shutil.which(tool)
    if path is None:
        service_unavailable(f"{tool} is not installed", how)
    return path


# -- JACK --


@dataclass
class JackServer:
    """A jackd with the dummy driver (no sound card needed) on a server name of its own."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, how: signal.Signals = signal.SIGKILL) -> None:
        """End it mid-show with `how`: SIGKILL is a crash, SIGTERM an operator's stop."""
        if self.alive:
            self.process.send_signal(how)
        self.process.wait(5)

    def stop(self) -> None:
        """Stop it politely (SIGTERM), forcefully if it lingers, and clear its leftovers."""
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.returncode == -signal.SIGKILL:
            # A crashed jackd leaves its shared memory (about 100 MB of /dev/shm)
            # behind; the next jackd to start frees what dead servers left, so start
            # one for a moment.
            sweeper = JackServer(self.name, _launch_jackd(self.name, self.log_path), self.log_path)
            _wait_until_ready(sweeper, timeout=5.0)
            sweeper.stop()
        # Clients still open when it stopped leave semaphores named after the server in
        # /dev/shm; the name is ours alone.
        for leftover in Path("/dev/shm").glob(f"*_{self.name}_*"):
            with contextlib.suppress(OSError):
                leftover.unlink()


@contextlib.contextmanager
def default_jack_server(name: str) -> Iterator[None]:
    """Make `name` the JACK server that this process's JACK clients join."""
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


def _launch_jackd(name: str, log_path: Path) -> subprocess.Popen[bytes]:
    jackd = shutil.which("jackd")
    if jackd is None:
        service_unavailable("jackd not found", "apt-get install jackd2")
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1"}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            # --no-realtime: no RT privileges needed; dummy driver: no sound card;
            # 256 frames at 48 kHz: a 5.3 ms cycle, so MIDI arrives within milliseconds.
            # --sync: the server waits for every client's cycle. In JACK2's default
            # asynchronous mode a client starved of CPU (a loaded machine, no realtime
            # priority) misses cycles, and its reader gets that client's last buffer
            # again or nothing: under stress-ng a probe heard 0xFA twice, or no 0xFC.
            [
                jackd,
                "--no-realtime",
                "--sync",
                "-n",
                name,
                "-d",
                "dummy",
                "-r",
                "48000",
                "-p",
                "256",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C in the test run is ours to handle, not jackd's
        )


def _wait_until_ready(server: JackServer, timeout: float) -> str | None:
    """None once an rtmidi JACK client can join `server` (what the tests need), else
    why not."""
    deadline = time.monotonic() + timeout
    with default_jack_server(server.name):
        while True:
            try:
                rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="dialjam-ready").delete()
                return None
            except rtmidi.RtMidiError as err:
                if not server.alive or time.monotonic() > deadline:
                    return str(err)
                time.sleep(0.02)


@contextlib.contextmanager
def _jack_turn(timeout: float) -> Iterator[None]:
    """Our JACK servers take turns, across processes: jack2 servers of one user share
    state in /dev/shm (the jack_db-UID metadata database, which a stopping server
    removes under its neighbours' clients; an 8-slot server registry; ~100 MB each).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no jackd to share with either
        yield
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
                    service_unavailable(
                        f"another test run kept its JACK server for over {timeout:.0f} s",
                        "let it finish (JACK servers of one user take turns)",
                    )
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def running_jack_server(log_dir: Path, *, timeout: float = 10.0) -> Iterator[JackServer]:
    """Start jackd on a unique server name and make it this process's default JACK
    server (JACK_DEFAULT_SERVER) until the block ends. Parallel runs never share a
    server, and take turns (see `_jack_turn`).
    """
    name = f"djtest{os.getpid()}x{uuid.uuid4().hex[:8]}"
    log_path = log_dir / f"jackd-{name}.log"
    with _jack_turn(timeout=120.0):
        server = JackServer(name, _launch_jackd(name, log_path), log_path)
        try:
            problem = _wait_until_ready(server, timeout)
            if problem is not None:
                service_unavailable(
                    f"jackd did not start ({problem}); its log:\n{server.log()}",
                    "check that jackd2 runs here: jackd --no-realtime -d dummy",
                )
            with default_jack_server(name):
                yield server
        finally:
            server.stop()


@pytest.fixture(name="jack_server")
def jack_server_fixture(tmp_path: Path) -> Iterator[JackServer]:
    """A fresh JACK server (dummy driver) for one test, stopped afterwards."""
    with running_jack_server(tmp_path) as server:
        yield server


class MidiProbe:
    """A JACK MIDI input that keeps every message it receives as a tuple of bytes.

    Read with rtmidi's own callback: mido's Python input callback drops bursts under
    JACK.
    """

    SETTLE_S = 0.03  # a few JACK cycles (5.3 ms each) for a new connection to carry data

    def __init__(self, client_name: str = "dialjam-probe") -> None:
        self.client_name = client_name
        self._rt = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client_name)
        # rtmidi ignores System Exclusive, timing (0xF8 clock and friends) and active
        # sensing by default; a probe must see every byte that was sent.
        self._rt.ignore_types(sysex=False, timing=False, active_sense=False)
        self._received: list[tuple[int, ...]] = []
        self._changed = threading.Condition()
        self._rt.set_callback(self._on_message)

    def _on_message(self, event: tuple[list[int], float], data: object = None) -> None:
        with self._changed:
            self._received.append(tuple(event[0]))
            self._changed.notify_all()

    def listen(self, port_name: str) -> str:
        """Open a virtual input port that outputs can connect to; returns its JACK name."""
        self._rt.open_virtual_port(port_name)
        return f"{self.client_name}:{port_name}"

    def connect(self, name_part: str) -> str:
        """Connect to the first JACK MIDI output whose name contains `name_part`."""
        ports: list[str] = self._rt.get_ports()
        for index, name in enumerate(ports):
            if name_part in name:
                self._rt.open_port(index, "in")
                time.sleep(self.SETTLE_S)
                return name
        raise AssertionError(f"no JACK MIDI output contains {name_part!r}: {ports}")

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[int, ...]]:
        """Everything received once at least `count` messages have arrived."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= count, timeout):
                raise AssertionError(
                    f"waited {timeout} s for {count} MIDI messages, got {self._received}"
                )
            return list(self._received)

    def settle(self, at_least: int = 0, quiet: float = 0.1) -> list[tuple[int, ...]]:
        """Everything received, once `at_least` messages have come and then nothing
        new for `quiet` seconds (to catch any message too many)."""
        self.wait_for(at_least)
        with self._changed:
            while self._changed.wait(quiet):
                pass
            return list(self._received)

    def clear(self) -> None:
        with self._changed:
            self._received.clear()

    def close(self) -> None:
        self._rt.cancel_callback()
        self._rt.close_port()
        self._rt.delete()


@pytest.fixture(name="midi_probe")
def midi_probe_fixture(jack_server: JackServer) -> Iterator[MidiProbe]:
    """A MidiProbe on the test's JACK server."""
    probe = MidiProbe()
    yield probe
    probe.close()


# -- FluidSynth --


@dataclass(frozen=True)
class FluidSynth:
    """FluidSynth's fast file renderer with a General MIDI soundfont."""

    binary: str
    soundfont: Path
    sample_rate: int = 44100

    def render(self, midi_path: Path, wav_path: Path) -> Path:
        """Render a MIDI file to a 16-bit WAV file, as fast as the CPU allows."""
        command = [
            self.binary,
            "-ni",  # no MIDI input driver, no shell
            "-q",
            "-F",
            str(wav_path),
            "-T",
            "wav",
            "-O",
            "s16",
            "-r",
            str(self.sample_rate),
            str(self.soundfont),
            str(midi_path),
        ]
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
        if done.returncode != 0 or not wav_path.exists():
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise AssertionError(f"fluidsynth failed ({done.returncode}): {output}")
        return wav_path


def find_fluidsynth() -> FluidSynth:
    """FluidSynth and a GM soundfont, or fail (CI) / skip saying what to install."""
    binary = shutil.which("fluidsynth")
    soundfont = next((path for path in SOUNDFONTS if path.exists()), None)
    if binary is None or soundfont is None:
        missing = "fluidsynth" if binary is None else "a GM soundfont"
        service_unavailable(f"{missing} not found", "apt-get install fluidsynth timgm6mb-soundfont")
    return FluidSynth(binary, soundfont)


@pytest.fixture(name="fluidsynth")
def fluidsynth_fixture() -> FluidSynth:
    return find_fluidsynth()


def wav_rms(path: Path) -> float:
    """The RMS level of a 16-bit PCM WAV file, as a fraction of full scale."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise AssertionError(f"{path}: expected 16-bit samples, got {wav.getsampwidth()}")
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


# -- Redis (the relays' backplane) --


def redis_server(workdir: Path, durable: bool = False) -> RedisServer:
    """A started redis-server of tests.support.redis; stop it when done."""
    binary = need_tool("redis-server", "apt-get install --no-install-recommends redis-server")
    server = RedisServer(binary, workdir, durable)
    server.start()
    return server


@pytest.fixture(name="redis_server")
def redis_server_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    server = redis_server(tmp_path)
    yield server
    server.stop()
