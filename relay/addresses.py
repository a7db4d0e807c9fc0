"""Where this machine is: its LAN address, and whether a host is this machine's
loopback (the settings' checks and the start lines use both)."""

from __future__ import annotations

import ipaddress
import socket


def lan_address() -> str:
    """This machine's address on its LAN (no packet is sent), or 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, nothing leaves
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: a rehearsal on this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
