"""WebSocket bytes as a client writes them, for tests that speak to the relay over a
raw socket: the opening handshake (RFC 6455 §4.1) and single frames (§5.2)."""

from __future__ import annotations

import os

# RFC 6455 §1.3's sample key: the relay checks only that one is there.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(path: str = "/ws", host: str = "127.0.0.1", **headers: str) -> bytes:
    """An opening handshake; `headers` are extra fields (`X_Forwarded_For="…"` is sent
    as `X-Forwarded-For: …`)."""
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def client_frame(payload: bytes, *, masked: bool = True, opcode: int = 0x1) -> bytes:
    """One final frame as a client writes it: masked with a fresh key (§5.3), unless
    `masked` is false to play a client that breaks the rule."""
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes([0x80 | opcode, mask_bit | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, mask_bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
