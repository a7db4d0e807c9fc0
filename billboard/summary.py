"""What the operator is told when the show starts and stops: one block each, plain
words, the things that decide whether the night works (which screen, whether the
speakers are real, where MIDI goes, what is recorded, whether phones can reach the
keypad) and loud warnings for what would fail in the street.

Pure: the adapters say what they opened; this writes the lines.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from relay.reach import REACH_TIMEOUT_S, Reach, probe_target

PREFIX = "dialjam billboard"


@dataclass(frozen=True, slots=True)
class Opened:
    """What the billboard opened, as the adapters describe it."""

    display: str  # "display 0, 1920×1080, full screen" or "headless (…)"
    layout: str  # "dashboard" or "projection (6 × 14 windows)"
    sound: str  # "alsa, 48000 Hz, 256-frame buffer" or "silent: …" or "off: …"
    midi: str | None  # the port's name, or None
    record: Path | None
    log_events: Path | None
    lights: str  # "off" or "sacn → multicast"
    keypad_url: str  # what the QR code holds
    public_url: str = ""  # [relay] public_url: probed at start (relay/reach.py)
    phone: str = ""  # the music down the phone line: where it goes, or "off: …"


def start_lines(opened: Opened) -> list[str]:
    """The start summary: one line per output, then the warnings."""
    lines = [
        f"{PREFIX} started:",
        f"  screen:    {opened.display}; layout {opened.layout}",
        f"  sound:     {opened.sound}",
        f"  MIDI:      {opened.midi or 'none (--midi-port NAME or --midi-virtual NAME to send)'}",
        f"  recording: {opened.record or 'none (--record FILE.mid)'}"
        + (f"; events logged to {opened.log_events}" if opened.log_events else ""),
        f"  lights:    {opened.lights}",
        *([f"  phone:     {opened.phone}"] if opened.phone else []),
        f"  QR code:   {opened.keypad_url}",
        f"  reach:     {reach_plan(opened.public_url)}",
    ]
    return lines + [f"WARNING: {w}" for w in url_warnings(opened.keypad_url)]


def reach_plan(public_url: str) -> str:
    """What the start summary says of the reachability probe before its answer."""
    base = probe_target(public_url) if public_url else None
    if base is None:
        return "not checked: public_url is empty in [relay] (the street's address is not known)"
    return f"checking {base} from here; the answer follows within {REACH_TIMEOUT_S:g} s"


def reach_lines(reach: Reach) -> list[str]:
    """The probe's answer, after the start summary: one line, loud when it failed."""
    if reach.ok:
        return [f"{PREFIX}: public address {reach.line}"]
    return [f"WARNING: public address {reach.line}"]


def url_warnings(keypad_url: str) -> list[str]:
    """What would keep phones in the street from the keypad the QR code points at."""
    parts = urlsplit(keypad_url)
    host = parts.hostname or ""
    out: list[str] = []
    if _local(host):
        out.append(
            f"the QR code points at {host}, an address of this network only: phones on "
            "mobile data cannot reach it. Set public_url in [relay] to the address the "
            "street reaches (https://…, through a TLS proxy such as Caddy)."
        )
    if parts.scheme == "http" and not _loopback(host):
        out.append(
            "the keypad is served over plain http: a phone's browser may refuse its "
            "vibration and sound, and Twilio needs https on port 443. Put TLS in front "
            "and set public_url to https://…"
        )
    return out


def _local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in ("localhost", "") or host.endswith((".local", ".lan", ".home"))
    return address.is_private or address.is_loopback or address.is_link_local


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def stop_lines(
    seconds: float,
    recorded: tuple[Path, int, float] | None,
    logged: tuple[Path, int] | None,
    problems: Sequence[str] = (),
) -> list[str]:
    """The stop summary: how long it ran, what was saved where, what went wrong."""
    lines = [f"{PREFIX} stopped after {_duration(seconds)}"]
    if recorded is not None:
        path, notes, length = recorded
        lines.append(f"  recording saved: {path}, {notes:,} notes, {_duration(length)}")
    if logged is not None:
        path, events = logged
        lines.append(f"  events logged: {path}, {events:,} events")
    lines += [f"  {problem}" for problem in problems]
    return lines


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
