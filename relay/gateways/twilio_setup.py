"""What the Twilio gateway needs of the installation, checked once at start
(`relay.config.load_installation` calls `check_twilio` when `[twilio]` is on): the
secrets, from the file or the environment, and a public_url Twilio can use.

Twilio signs each webhook over the URL it posts to, so the relay must know that URL:
public_url. Left empty behind a TLS proxy, the relay would check signatures against
``http://<its own address>`` while Twilio signed ``https://…``, and every genuine
webhook would get 403. Its Media Streams need ``wss://`` on port 443 (Twilio's
errors 31922 for ``ws://``, 31910 for another port), and the ``<Stream url>`` takes no
query string. A rehearsal without TLS says so with ``allow_insecure_url = true``,
which only a loopback public_url may use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..config import ConfigError, RelayConfig, TwilioConfig, is_loopback
from .twilio_signature import parse_shared_keys

# The [twilio] secrets the environment may give instead of the file
# (DIALJAM_TWILIO_AUTH_TOKEN, DIALJAM_TWILIO_SHARED_KEYS).
SECRETS = ("auth_token", "shared_keys")


def env_name(key: str) -> str:
    return f"DIALJAM_TWILIO_{key.upper()}"


def check_twilio(
    config: TwilioConfig, relay: RelayConfig, env: Mapping[str, str], path: str
) -> TwilioConfig:
    """`config` with the environment's secrets in place of the file's, checked
    against the relay's settings; raises `ConfigError` naming the key, where it was
    given and what Twilio needs."""
    given = {key for key in SECRETS if env_name(key) in env}
    config = dataclasses.replace(
        config,
        auth_token=env.get(env_name("auth_token"), config.auth_token),
        shared_keys=env.get(env_name("shared_keys"), config.shared_keys),
    )
    where = path or "the installation"
    try:
        parse_shared_keys(config.shared_keys)
    except ValueError as exc:
        origin = env_name("shared_keys") if "shared_keys" in given else f"{where} [twilio]"
        raise ConfigError(
            f"{origin}: shared_keys: {exc}; give each Webhooks shared key as KEYID:SECRET, "
            "separated by commas"
        ) from None
    problem = url_problem(relay, config.allow_insecure_url)
    if problem is not None:
        raise ConfigError(
            f"{where}: [twilio] is on, but public_url ([relay] public_url, "
            f"DIALJAM_PUBLIC_URL or --public-url) cannot serve it: {problem}. Set public_url "
            "to the https:// address Twilio reaches, on port 443 (e.g. "
            "https://jam.example.org behind a TLS proxy); for a rehearsal on this machine "
            "only, set [twilio] allow_insecure_url = true with a loopback address"
        )
    return config


def url_problem(relay: RelayConfig, allow_insecure: bool) -> str | None:
    """Why Twilio cannot use `relay`'s public_url (None when it can): it must be
    https://HOST[:443][/path] with no query, fragment or user name. With
    `allow_insecure`, anything else passes when the host is a loopback address."""
    url = relay.public_url or relay.base_url()
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return f"its port is not a number ({url!r})"
    host = parts.hostname or ""
    if not host:
        return f"{url!r} names no host"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return (
            "it has a query string or fragment, which neither Twilio's stream URL nor the "
            "relay's paths keep (give the bare address, e.g. https://jam.example.org)"
        )
    if parts.username is not None or parts.password is not None:
        return "it carries a user name or password (Twilio signs and calls the bare address)"
    if allow_insecure and is_loopback(host):
        return None
    if not relay.public_url:
        return (
            f"it is empty, so the relay would check Twilio's signatures against {url}; "
            "behind a TLS proxy Twilio signs https://… and every correctly signed webhook "
            "would get 403"
        )
    if parts.scheme != "https":
        refused = (
            f" (allow_insecure_url is for rehearsals on this machine: refused for {host}, "
            "which is not a loopback address)"
            if allow_insecure
            else ""
        )
        return (
            "it is not https://: Twilio's webhooks want https, and the stream URL would be "
            f"ws://…, which Twilio refuses (error 31922){refused}"
        )
    if port is not None and port != 443:
        return (
            f"its port is {port}: Twilio opens Media Streams only on port 443 (error 31910); "
            "put a TLS proxy on 443 in front of the relay"
        )
    return None
