"""Is the public address really this relay, from here? A bounded probe at start.

The relay answers ``GET /.well-known/dialjam-reach/NONCE`` with a proof: an HMAC of
the nonce under a key derived from the billboard token (`reach_key`), which only this
installation's relay and billboard hold. The prober makes a fresh random nonce, fetches
``PUBLIC_URL/.well-known/dialjam-reach/NONCE`` and checks the proof, so a different
server answering at that address (a router's page, a parked domain, an old relay with
other tokens) cannot pass, nor can a cache replay an old answer.

`probe` never raises and never takes longer than its bound: it returns a `Reach` whose
`line` says, for the operator, "reachable at https://… (answered in 43 ms)" or exactly
what failed: DNS, refused, TLS, timeout, or a different server answered.

The probe runs on this machine, so it shows that the address leads back here through
DNS, the router and the TLS proxy; a router that does not loop a machine's own public
address back to it (no hairpin NAT) refuses or times out even when the street reaches
it, and the failure lines say so.
"""

from __future__ import annotations

import hmac
import re
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from .sessions import derive_key

REACH_PATH: Final = "/.well-known/dialjam-reach/"
REACH_TIMEOUT_S: Final = 4.0  # the whole probe: DNS, connect, TLS and the answer
_NONCE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
_PROOF_BYTES: Final = 64  # a hex SHA-256; anything longer is not our answer
_HAIRPIN: Final = (
    " (from this machine: a router that does not loop its own public address back "
    "refuses this even when the street reaches it; try the address from a phone on "
    "mobile data)"
)

Outcome = Literal["reachable", "dns", "refused", "tls", "timeout", "other_server", "error"]


def reach_key(billboard_token: str) -> bytes:
    """The key the proof is made with (the billboard token's, for this purpose only)."""
    return derive_key(billboard_token, "public address probe")


def proof(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode(), "sha256").hexdigest()


def mount(app: web.Application, key: bytes) -> None:
    """Answer the probe on `app` (the relay), for the installation whose key is `key`."""

    async def answer(request: web.Request) -> web.Response:
        nonce = request.match_info["nonce"]
        if _NONCE.fullmatch(nonce) is None:
            return web.Response(status=404, text="not a probe")
        # Never cached: each probe's answer is its own.
        headers = {"Cache-Control": "no-store"}
        return web.Response(text=proof(key, nonce), content_type="text/plain", headers=headers)

    app.router.add_get(REACH_PATH + "{nonce}", answer)


@dataclass(frozen=True, slots=True)
class Reach:
    """What the probe found: `outcome`, the address probed, `ms` when it answered, and
    `line`, the sentence the operator reads."""

    outcome: Outcome
    url: str
    line: str
    ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "reachable"


def probe_target(public_url: str) -> str | None:
    """The base to probe from the configured public address (the keypad's address is
    this base and /keypad), or None when it is not an http(s) address."""
    parts = urlsplit(public_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


async def probe(
    public_url: str,
    key: bytes,
    timeout_s: float = REACH_TIMEOUT_S,
) -> Reach:
    """Fetch the proof through `public_url` within `timeout_s`; never raises."""
    origin = probe_target(public_url)
    if origin is None:
        return Reach("error", public_url, f"not checked: {public_url!r} is not an http(s) address")
    nonce = secrets.token_urlsafe(24)
    started = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(origin + REACH_PATH + nonce, allow_redirects=False) as resp,
        ):
            body = await resp.content.read(_PROOF_BYTES + 1)
            status, server = resp.status, resp.headers.get("Server", "")
            moved = resp.headers.get("Location", "") if 300 <= status < 400 else ""
    except aiohttp.ClientConnectorDNSError as exc:
        host = urlsplit(origin).hostname
        return Reach(
            "dns",
            origin,
            f"NOT reachable at {origin}: DNS has no address for {host} ({_why(exc.os_error)})",
        )
    except aiohttp.ClientConnectorCertificateError as exc:
        return Reach(
            "tls",
            origin,
            f"NOT reachable at {origin}: TLS certificate refused ({_why(exc.certificate_error)})",
        )
    except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
        return Reach("tls", origin, f"NOT reachable at {origin}: TLS failed ({_why(exc)})")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            return Reach(
                "refused", origin, f"NOT reachable at {origin}: connection refused{_HAIRPIN}"
            )
        return Reach(
            "error",
            origin,
            f"NOT reachable at {origin}: cannot connect ({_why(exc.os_error)}){_HAIRPIN}",
        )
    except TimeoutError:
        return Reach(
            "timeout",
            origin,
            f"NOT reachable at {origin}: no answer within {timeout_s:g} s{_HAIRPIN}",
        )
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Reach("error", origin, f"NOT reachable at {origin}: {_why(exc)}")
    ms = round((time.monotonic() - started) * 1000)
    if status == 200 and hmac.compare_digest(body.strip(), proof(key, nonce).encode()):
        return Reach("reachable", origin, f"reachable at {origin} (answered in {ms} ms)", ms)
    who = f"HTTP {status}" + (f" from {server[:40]!r}" if server else "")
    if moved:  # a proxy sending http to https, or the relay moved: the address to use
        where = moved[:120].split(REACH_PATH)[0] or moved[:120]
        return Reach(
            "other_server",
            origin,
            f"NOT this relay at {origin}: it redirects (HTTP {status}) to {where}; set public_url "
            "to the address phones should use",
            ms,
        )
    return Reach(
        "other_server",
        origin,
        f"NOT this relay at {origin}: a different server answered ({who}); check DNS and "
        "that the proxy forwards to this relay",
        ms,
    )


def _why(exc: BaseException) -> str:
    """An exception in a few words: an OS error's own sentence, without its number."""
    strerror = getattr(exc, "strerror", None)
    text = strerror if isinstance(strerror, str) and strerror else str(exc).strip()
    text = text or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "…"


async def probe_in_background(
    public_url: str, key: bytes, say: Callable[[Reach], None], timeout_s: float = REACH_TIMEOUT_S
) -> None:
    """Probe and hand the result to `say` (the start summary's follow-up line)."""
    say(await probe(public_url, key, timeout_s))
