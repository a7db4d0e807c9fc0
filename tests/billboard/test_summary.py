"""The operator always knows: what opened at the start, what was saved at the stop,
loud warnings for an address the street cannot reach, and a screen that cannot open
stops the show rather than leave a black wall."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from billboard.sound import no_sound_device
from billboard.summary import Opened, reach_lines, start_lines, stop_lines, url_warnings
from relay.reach import Reach
from tests.support.processes import ROOT, free_port, start_billboard


def billboard() -> list[str]:
    """`python -m billboard` with its relay on a free port of 127.0.0.1."""
    return [sys.executable, "-m", "billboard", "--host", "127.0.0.1", "--port", str(free_port())]


def opened(url: str) -> Opened:
    return Opened(
        display="display 1, 1920×1080, full screen",
        layout="projection (6 × 14 windows)",
        sound="on pulseaudio, 48000 Hz, 2 channels, 5.3 ms buffer",
        midi="dialjam:out",
        record=Path("night.mid"),
        log_events=None,
        lights="sacn → multicast",
        keypad_url=url,
    )


def test_the_start_summary_names_every_output_and_a_public_https_address_warns_nothing() -> None:
    lines = start_lines(opened("https://jam.example.org/keypad?channel=dialjam"))
    text = "\n".join(lines)
    for said in (
        "display 1, 1920×1080, full screen",
        "projection (6 × 14 windows)",
        "pulseaudio",
        "dialjam:out",
        "night.mid",
        "sacn → multicast",
        "https://jam.example.org/keypad",
    ):
        assert said in text
    assert "WARNING" not in text


def test_a_lan_address_or_plain_http_in_the_qr_code_is_a_loud_warning() -> None:
    lan = url_warnings("http://192.168.1.20:8080/keypad?channel=dialjam")
    assert len(lan) == 2
    assert "mobile data cannot reach it" in lan[0] and "public_url" in lan[0]
    assert "https" in lan[1] and "Twilio" in lan[1]
    assert url_warnings("http://jam.example.org/keypad") == [url_warnings("http://x.org/")[0]]
    assert url_warnings("https://10.0.0.5/keypad")[0].startswith("the QR code points at 10.0.0.5")
    assert url_warnings("https://jam.example.org/keypad") == []


def test_the_start_summary_says_the_public_address_is_being_checked_and_then_what_was_found() -> (
    None
):
    checking = start_lines(
        dataclasses.replace(
            opened("https://jam.example.org/keypad"), public_url="https://jam.example.org/"
        )
    )
    assert (
        "  reach:     checking https://jam.example.org from here; the answer follows within 4 s"
        in checking
    )
    unchecked = "\n".join(start_lines(opened("http://192.168.1.20:8080/keypad")))
    assert "reach:     not checked: public_url is empty" in unchecked
    ok = Reach(
        "reachable",
        "https://jam.example.org",
        "reachable at https://jam.example.org (answered in 41 ms)",
        41,
    )
    assert reach_lines(ok) == [
        "dialjam billboard: public address reachable at https://jam.example.org (answered in 41 ms)"
    ]
    failed = Reach(
        "timeout",
        "https://jam.example.org",
        "NOT reachable at https://jam.example.org: no answer within 4 s",
    )
    assert reach_lines(failed) == [
        "WARNING: public address NOT reachable at https://jam.example.org: no answer within 4 s"
    ]


def test_the_stop_summary_says_what_was_saved_where() -> None:
    lines = stop_lines(2460.0, (Path("night.mid"), 1234, 2455.0), (Path("night.jsonl"), 5012))
    assert lines == [
        "dialjam billboard stopped after 41 min",
        "  recording saved: night.mid, 1,234 notes, 41 min",
        "  events logged: night.jsonl, 5,012 events",
    ]
    assert stop_lines(4000.0, None, None) == ["dialjam billboard stopped after 1 h 07 min"]


async def test_a_show_says_what_it_opened_and_what_it_saved(tmp_path: Path) -> None:
    record, events = tmp_path / "night.mid", tmp_path / "night.jsonl"
    proc, port = await start_billboard(
        "--duration", "3", "--record", str(record), "--log-events", str(events)
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    said = out.decode()
    assert "dialjam billboard started:" in said
    assert "screen:    headless" in said and "sound:     off (--no-sound)" in said
    assert f"recording: {record}; events logged to {events}" in said
    assert f"QR code:   http://127.0.0.1:{port}/keypad" in said  # the port it really has
    # The show's own length (3 s and however long the screen took to open, on a busy box).
    assert re.search(r"^dialjam billboard stopped after \d+ s$", said, re.MULTILINE)
    assert f"recording saved: {record}, " in said and " notes, " in said
    assert f"events logged: {events}, 0 events" in said


async def test_a_show_checks_its_public_address_after_the_start_summary() -> None:
    port = free_port()  # the relay's port, so the public address leads to this very relay
    public = f"http://127.0.0.1:{port}"
    proc, _ = await start_billboard("--duration", "6", "--port", str(port), "--public-url", public)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    said = out.decode()
    assert f"reach:     checking {public} from here" in said
    found = rf"^dialjam billboard: public address reachable at {public} \(answered in \d+ ms\)$"
    assert re.search(found, said, re.MULTILINE), said


def test_a_screen_that_cannot_open_stops_the_show_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDL_")}
    env["DISPLAY"] = ":4711"  # a show machine whose X display is wrong
    env["SDL_AUDIODRIVER"] = "dummy"
    done = subprocess.run(
        [*billboard(), "--no-sound", "--duration", "20"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode == 3, err[-2000:]
    assert "error: cannot open a display" in err and "DISPLAY=:4711" in err
    assert "--list-displays" in err and "--headless" in err
    assert "Traceback" not in err


def test_list_displays_names_each_screen_and_its_size(xvfb: str) -> None:
    env = {**os.environ, "DISPLAY": xvfb}
    env.pop("SDL_VIDEODRIVER", None)
    done = subprocess.run(
        [sys.executable, "-m", "billboard", "--list-displays"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().splitlines()[0].startswith("0: 1920×1080")


def test_a_machine_without_a_sound_card_or_sound_server_is_known_before_asking_sdl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SDL_AUDIODRIVER", raising=False)
    monkeypatch.delenv("PULSE_SERVER", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no pulse/native, no pipewire-0
    real_exists = os.path.exists
    cards = {"present": False}
    monkeypatch.setattr(
        os.path,
        "exists",
        lambda p: cards["present"] if p == "/dev/snd" else real_exists(p),
    )
    assert no_sound_device() == "no sound card here (no /dev/snd, PulseAudio or PipeWire)"
    cards["present"] = True
    assert no_sound_device() is None  # a card: SDL tries it
    cards["present"] = False
    (tmp_path / "pipewire-0").touch()
    assert no_sound_device() is None  # a sound server: SDL tries it
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    (tmp_path / "pipewire-0").unlink()
    assert no_sound_device() is None  # a driver the operator chose is always tried


def test_no_raw_alsa_noise_when_the_billboard_opens_its_speakers(tmp_path: Path) -> None:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    env.pop("SDL_AUDIODRIVER", None)  # SDL tries the machine's own (ALSA without a card)
    env.pop("DISPLAY", None)
    done = subprocess.run(
        [*billboard(), "--duration", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=90,
        check=False,
    )
    err, out = done.stderr.decode(), done.stdout.decode()
    assert done.returncode == 0, err[-2000:]
    assert "ALSA lib" not in err
    assert "\n  sound:     " in out  # what the speakers are, said in one line
    if no_sound_device() is not None:  # this machine (and CI's): no card, no server
        assert "no sound: no sound card here (no /dev/snd, PulseAudio or PipeWire)" in err
        assert "sound:     none" in out
