"""Twilio's request signatures, checked without I/O: which secret and algorithm the
headers name, whether the signature fits the URL and the POST parameters, and when it
does not, a sentence saying exactly what was expected and what was received.

Twilio signs every webhook in ``X-Twilio-Signature``: base64(HMAC(secret, URL + each
POST parameter sorted by name, name + value)). By default the secret is the account's
auth token and the HMAC is SHA-1. When a Webhooks Rule matches the URL, Twilio signs
with that rule's Setting's shared key and algorithm instead and says so in
``X-Twilio-Webhooks-Signature-Settings: key=<key id>,algorithm=HMAC_SHA256``; the
signed string is the same
(https://www.twilio.com/docs/usage/webhooks/webhooks-security,
https://www.twilio.com/docs/usage/webhooks/webhook-shared-keys; twilio-python's
``RequestValidator`` and ``get_signature_algorithm`` read the header the same way).

So a request is accepted when either holds, as its headers say:

- no settings header: a valid HMAC-SHA1 under the auth token;
- a settings header: a valid HMAC of the named algorithm (HMAC_SHA256, or HMAC_SHA1)
  under the shared key of the named key id.

Anything else is refused. A refusal's `detail` names the URL forms tried, the
algorithm and key id, the parameters' names and the first characters of the
signature received: never a secret, the whole signature, or a parameter's value (a
``From`` is a phone number).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"
ALGORITHMS = (HMAC_SHA1, HMAC_SHA256)
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
# What a refusal may show of a header: its first characters, never all of it.
_SHOWN = 6
_MAX_HEADER = 200


def compute_signature(
    secret: str, url: str, params: Iterable[tuple[str, str]] = (), algorithm: str = HMAC_SHA1
) -> str:
    """Twilio's X-Twilio-Signature: base64(HMAC(secret, URL + each POST parameter
    sorted by name, name + value)), SHA-1 or SHA-256 as `algorithm` says. Repeated
    names: each distinct value in order, as twilio-python's RequestValidator does."""
    by_name: dict[str, set[str]] = {}
    for name, value in params:
        by_name.setdefault(name, set()).add(value)
    text = url + "".join(
        name + value for name in sorted(by_name) for value in sorted(by_name[name])
    )
    digest = hashlib.sha256 if algorithm == HMAC_SHA256 else hashlib.sha1
    mac = hmac.new(secret.encode(), text.encode(), digest)
    return base64.b64encode(mac.digest()).decode()


def url_variants(url: str) -> list[str]:
    """`url` as given, and with its default port added or removed (:443 for https and
    wss, :80 for http and ws): Twilio has signed both forms."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or parts.hostname is None:
        return [url]
    if port is None:
        other = parts._replace(netloc=f"{parts.netloc}:{default}")
    elif port == default:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        return [url]
    return [url, urlunsplit(other)]


def signature_ok(
    secret: str,
    url: str,
    params: Iterable[tuple[str, str]],
    given: str | None,
    algorithm: str = HMAC_SHA1,
) -> bool:
    """Whether `given` signs `url` (with or without its default port) and `params`
    under `secret` and `algorithm`; compared in constant time."""
    if not given:
        return False
    params = list(params)
    expected = given.strip().encode()
    return any(
        hmac.compare_digest(
            compute_signature(secret, variant, params, algorithm).encode(), expected
        )
        for variant in url_variants(url)
    )


@dataclass(frozen=True)
class Settings:
    """What X-Twilio-Webhooks-Signature-Settings names: a key id and an algorithm
    (either may be empty when the header leaves it out)."""

    key: str
    algorithm: str


def parse_settings(header: str) -> Settings:
    """``key=<id>,algorithm=<name>`` (in any order, spaces ignored); a missing
    algorithm is HMAC_SHA1, as in twilio-python's get_signature_algorithm."""
    values: dict[str, str] = {}
    for part in header[:_MAX_HEADER].split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() in ("key", "algorithm") and value.strip():
            values.setdefault(name.strip(), value.strip())
    return Settings(values.get("key", ""), values.get("algorithm", HMAC_SHA1).upper())


@dataclass(frozen=True)
class Keys:
    """The secrets a Twilio signature may be made with: the account's auth token and
    the shared keys by key id. None of either: signatures are not checked."""

    auth_token: str = ""
    shared: Mapping[str, str] | None = None

    @property
    def checked(self) -> bool:
        return bool(self.auth_token or self.shared)


@dataclass(frozen=True)
class Verdict:
    """A request's signature checked: `ok`, or `reason` (a short code, one log line
    each) and `detail` (for a person: what was expected, what was received)."""

    ok: bool
    reason: str = ""
    detail: str = ""
    algorithm: str = HMAC_SHA1
    key: str = ""  # the shared key's id, when the headers named one


ACCEPTED = Verdict(True)


def shown(value: str, first: int = _SHOWN) -> str:
    """A header's first characters and its length, safe for a log line."""
    head = "".join(ch if ch.isprintable() else "?" for ch in value[:first])
    return f"{head!r}… ({len(value)} characters)" if len(value) > first else repr(head)


def check(
    keys: Keys,
    url: str,
    params: Iterable[tuple[str, str]],
    signature: str | None,
    settings: str | None,
    alternatives: Iterable[str] = (),
) -> Verdict:
    """Whether the headers' `signature` (X-Twilio-Signature) and `settings`
    (X-Twilio-Webhooks-Signature-Settings; None when absent) sign `url` and `params`
    under `keys`. `alternatives`: other URLs Twilio might have signed instead, tried
    only after a refusal to say so in its detail (never accepted)."""
    if not keys.checked:
        return ACCEPTED
    params = list(params)
    if settings is not None and not settings.strip():
        settings = None  # an empty header names nothing: the auth token's signature
    if settings is None:
        algorithm, key_id, secret = HMAC_SHA1, "", keys.auth_token
        if not secret:
            return Verdict(
                False,
                "no_settings_header",
                f"no {SETTINGS_HEADER} header: expected a shared-key signature (the relay "
                "has shared keys but no auth_token for Twilio's default HMAC_SHA1)",
            )
        using = "HMAC_SHA1 with the auth token"
    else:
        parsed = parse_settings(settings)
        algorithm, key_id = parsed.algorithm, parsed.key
        if algorithm not in ALGORITHMS:
            return Verdict(
                False,
                "unknown_algorithm",
                f"{SETTINGS_HEADER} names algorithm {shown(algorithm, 32)}: expected "
                f"{HMAC_SHA256} or {HMAC_SHA1}",
                algorithm=algorithm[:32],
                key=key_id[:64],
            )
        shared = keys.shared or {}
        if not key_id or key_id not in shared:
            known = ", ".join(sorted(shared)) or "none"
            return Verdict(
                False,
                "unknown_key",
                f"{SETTINGS_HEADER} names key {shown(key_id, 48) if key_id else '(none)'}: "
                f"expected one of [twilio] shared_keys' ids ({known})",
                algorithm=algorithm,
                key=key_id[:64],
            )
        secret = shared[key_id]
        using = f"{algorithm} with shared key {key_id}"
    if not signature:
        what = "no" if signature is None else "an empty"
        return Verdict(
            False,
            "missing_signature",
            f"{what} {SIGNATURE_HEADER} header: expected {using} over "
            f"{' or '.join(url_variants(url))}",
            algorithm=algorithm,
            key=key_id,
        )
    if signature_ok(secret, url, params, signature, algorithm):
        return Verdict(True, algorithm=algorithm, key=key_id)
    names = sorted({name for name, _ in params})
    signed_instead = next(
        (alt for alt in alternatives if signature_ok(secret, alt, params, signature, algorithm)),
        None,
    )
    detail = (
        f"{SIGNATURE_HEADER} {shown(signature.strip())} is not {using} over "
        f"{' or '.join(url_variants(url))}"
        + (f" with the POST parameters {', '.join(names)}" if names else " with no parameters")
    )
    if signed_instead is not None:
        detail += f"; it signs {signed_instead} instead"
    return Verdict(False, "bad_signature", detail, algorithm=algorithm, key=key_id)


def parse_shared_keys(text: str) -> dict[str, str]:
    """``KEYID:SECRET`` entries, separated by commas or whitespace, as a mapping;
    raises ValueError saying which entry is malformed (never showing a secret)."""
    keys: dict[str, str] = {}
    for n, entry in enumerate(text.replace(",", " ").split(), start=1):
        key_id, sep, secret = entry.partition(":")
        if not sep or not key_id or not secret:
            raise ValueError(f"entry {n} is not KEYID:SECRET")
        if key_id in keys:
            raise ValueError(f"key id {key_id!r} is given twice")
        keys[key_id] = secret
    return keys
