"""The installation's settings, read once from its one TOML file.

`load_installation` reads the file (``--config`` or ``DIALJAM_CONFIG``) once and
returns the relay's settings (defaults < the `[relay]` table < ``DIALJAM_*``
environment variables < command-line flags), the gateways' (`[twilio]`, `[ari]`) and
the file's other tables for the programs that embed the relay (the billboard reads its
`[billboard]` table from there). Every mistake is a `ConfigError` whose message names
the setting and how to fix it.

`fill_tokens` is the one place a missing secret is made up (the operator's and the
billboard's tokens, the callers' pseudonym key); it says what it made, and the
command lines print it at start.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from .addresses import is_loopback as is_loopback
from .addresses import lan_address as lan_address
from .contract import channels as contract_channels
from .edge import parse_networks, parse_origins
from .sessions import derive_key

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


class ConfigError(Exception):
    """A setting the operator must fix; the message says which and how."""


@dataclass(frozen=True)
class RelayConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    channel: str = "dialjam"
    # The address phones, browsers and providers reach (e.g. https://jam.example.org).
    # Empty: http://<this machine's LAN address>:<port>.
    public_url: str = ""
    # Empty: a random token is made at start and printed with the console's URL.
    operator_token: str = ""
    billboard_token: str = ""
    max_frame: int = 4096  # bytes per frame without a token
    token_max_frame: int = 65536  # bytes per frame for token holders (hard cap)
    rate: float = 20.0  # frames a second per connection without a token; 0 = no limit
    burst: int = 40
    queue: int = 2048  # events waiting per subscriber before the oldest are dropped
    history_events: int = 1000
    history_seconds: float = 600.0
    heartbeat_s: float = 20.0
    slow_close_s: float = 5.0
    max_channels: int = 10_000  # with a backplane: counted in Redis, for all relays
    web_dir: str = str(WEB_DIR)
    # --- who may publish (README, "Facing the street: who may do what") ---
    # Seed-format publishers (a Tropo script, a custom IVR) show this token in a frame's
    # "token" or the URL (/ws?token=…). Empty: none is accepted.
    publisher_token: str = ""
    # Signs keypads' caller sessions. Empty: derived from operator_token (so sessions
    # outlive a restart whenever the tokens are configured).
    session_key: str = ""
    # The key of the callers' pseudonyms at every door of the installation (the relay's,
    # the gateways', the billboard's), so a number is the same caller whichever door it
    # came through. Empty: derived from session_key or operator_token, so it lasts as
    # long as they do (a new one each start when the tokens are made up).
    pseudonym_key: str = ""
    session_ttl_s: float = 7200.0  # a caller session's life; the keypad renews it
    sessions_per_minute: int = 120  # new sessions per address (a festival NAT is one)
    session_grace_s: float = 20.0  # a keypad gone this long leaves the billboard
    caller_rate: float = 10.0  # events a second per caller, across its connections
    # Frames a second per connection holding only the publisher token (an IVR speaks for
    # many callers), a frame counted once per KiB; 0 = no limit. Past it the socket is
    # read more slowly (over HTTP, per address: 429). Everything on the public channel
    # reaches the billboard in arrival order, so a burst from one publisher is a queue
    # every caller's next press waits behind (the burst bounds it), and the relay's one
    # thread reads every byte of every frame.
    publisher_rate: float = 1000.0
    publisher_burst: int = 200
    # Anonymous publishing as in 2010, for a local rehearsal; refused on a non-loopback
    # host unless open_public is also set.
    open: bool = False
    open_public: bool = False
    # --- abuse limits ---
    max_connections: int = 0  # 0: from RLIMIT_NOFILE (raised to its hard limit)
    reserved_connections: int = 32  # of those, kept for token holders
    connections_per_address: int = 500  # hundreds of phones share a festival NAT
    header_timeout_s: float = 10.0  # a request's headers must arrive within this
    # Proxies (Caddy, nginx) whose X-Forwarded-For is believed: addresses or networks,
    # comma-separated (e.g. "127.0.0.1, 10.0.0.0/8").
    trusted_proxies: str = ""
    # Browser origins allowed to open a WebSocket or POST /publish, comma-separated.
    # Empty: public_url's origin and the relay's own address.
    allowed_origins: str = ""
    history_bytes: int = 1 << 20  # per channel
    history_total_bytes: int = 64 << 20  # for all channels together (also in Redis)
    # Several relays share every channel through Redis (relay/backplane.py):
    # "redis://HOST:PORT/DB". Empty: this relay's channels are its own, in memory.
    backplane: str = ""
    # The show's music down the phone line (relay/phone_feed.py): the billboard feeds
    # /phone-audio and the voice gateways play it to their calls, through a jitter
    # budget of phone_jitter_ms. false: calls hear only their greeting.
    phone_music: bool = True
    phone_jitter_ms: int = 60

    def keypad_url(self) -> str:
        return f"{self.base_url()}/keypad?channel={self.channel}"

    def console_url(self) -> str:
        # The token rides in the fragment: browsers never send it, so it never
        # reaches an access log.
        return f"{self.base_url()}/console?channel={self.channel}#token={self.operator_token}"

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::", "") else lan_address()
        return f"http://{host}:{self.port}"


def fill_tokens(config: RelayConfig) -> tuple[RelayConfig, list[str]]:
    """The settings with every missing secret filled, and the names of those made up
    for this run only, to tell the operator ("operator", "billboard", "pseudonym").

    The operator's and the billboard's tokens are random; the pseudonym key is derived
    from session_key or operator_token (HMAC as a KDF, apart from the session key), so
    it is made up only when the token it comes from was. The one place that fills
    them: the command lines call it before `announce`, and `create_app` and the
    billboard's show call it too, so nothing runs with an empty token."""
    made: list[str] = []
    changes: dict[str, Any] = {}
    for role in ("operator", "billboard"):
        if not getattr(config, f"{role}_token"):
            changes[f"{role}_token"] = secrets.token_urlsafe(18)
            made.append(role)
    if not config.pseudonym_key:
        secret = config.session_key or changes.get("operator_token") or config.operator_token
        changes["pseudonym_key"] = derive_key(secret, "relay pseudonyms").hex()
        if not config.session_key and "operator" in made:
            made.append("pseudonym")
    return dataclasses.replace(config, **changes), made


def pseudonym_key(config: RelayConfig) -> bytes:
    """The installation's key of callers' pseudonyms, for a door to use. Empty is a
    bug of ours, never a reason to make one up here: `fill_tokens` fills it, once."""
    if not config.pseudonym_key:
        raise ValueError("pseudonym_key is empty: the settings were not passed through fill_tokens")
    return config.pseudonym_key.encode()


# Field name → "int" | "float" | "str" (annotations are strings here).
_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(RelayConfig)}


def _coerce(key: str, value: Any, origin: str) -> Any:
    return coerce(_TYPES[key], key, value, origin)


def coerce(kind: str, key: str, value: Any, origin: str) -> Any:
    """Check a setting of `kind` ("int", "float", "str", "bool"); strings (from the
    environment or flags) are converted. Raises `ConfigError` naming the setting."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{origin}: {key} must be true or false, not {value!r}")
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{origin}: {key} must be a string, not {value!r}")
        return value
    if isinstance(value, str):
        try:
            return int(value) if kind == "int" else float(value)
        except ValueError:
            pass
    elif not isinstance(value, bool):
        if kind == "int" and isinstance(value, int):
            return value
        if kind == "float" and isinstance(value, int | float):
            return float(value)
    what = "a whole number" if kind == "int" else "a number"
    raise ConfigError(f"{origin}: {key} must be {what}, not {value!r}")


def table_settings(
    table: Mapping[str, Any], types: Mapping[str, str], origin: str
) -> dict[str, Any]:
    """A table's settings checked against `types` (name → "int" | "float" | "str" |
    "bool"); an unknown name or a wrong type raises `ConfigError` naming it."""
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key not in types:
            known = ", ".join(sorted(types))
            raise ConfigError(f"{origin} has no setting {key!r} (known: {known})")
        settings[key] = coerce(types[key], key, value, origin)
    return settings


def check_channel(channel: str, origin: str) -> None:
    """An installation's channel: the channel grammar, and not a :control, :state or
    :callers channel of its own (`relay.contract.channels.NAME_RULE`)."""
    if not contract_channels.valid_installation_name(channel):
        raise ConfigError(f"{origin}channel {channel!r} {contract_channels.NAME_RULE}")


def validate(config: RelayConfig) -> None:
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port {config.port} is outside 0–65535")
    check_channel(config.channel, "")
    if config.public_url and not config.public_url.startswith(("http://", "https://")):
        raise ConfigError(f"public_url {config.public_url!r} must start with http:// or https://")
    for key in (
        "max_frame", "token_max_frame", "queue", "history_events", "max_channels",
        "history_bytes", "history_total_bytes",
    ):  # fmt: skip
        if getattr(config, key) < 1:
            raise ConfigError(f"{key} must be at least 1")
    if config.max_frame > config.token_max_frame:
        raise ConfigError("max_frame cannot exceed token_max_frame")
    if config.rate < 0 or config.burst < 1:
        raise ConfigError("rate must be ≥ 0 (0 = no limit) and burst ≥ 1")
    if config.publisher_rate < 0 or config.publisher_burst < 1:
        raise ConfigError("publisher_rate must be ≥ 0 (0 = no limit) and publisher_burst ≥ 1")
    if not 20 <= config.phone_jitter_ms <= 400 or config.phone_jitter_ms % 20:
        raise ConfigError("phone_jitter_ms is 20–400, in 20 ms frames")
    for key in ("history_seconds", "heartbeat_s", "slow_close_s"):
        if getattr(config, key) <= 0:
            raise ConfigError(f"{key} must be more than 0")
    tokens = [
        t for t in (config.operator_token, config.billboard_token, config.publisher_token) if t
    ]
    if len(tokens) != len(set(tokens)):
        raise ConfigError("operator_token, billboard_token and publisher_token must differ")
    for key in ("session_ttl_s", "session_grace_s", "caller_rate"):
        if getattr(config, key) <= 0:
            raise ConfigError(f"{key} must be more than 0")
    if config.sessions_per_minute < 1:
        raise ConfigError("sessions_per_minute must be at least 1")
    if config.open and not config.open_public and not is_loopback(config.host):
        raise ConfigError(
            f"open = true lets anyone publish as anyone: refused on {config.host}, which is "
            "not a loopback address; listen on 127.0.0.1 for a rehearsal, or set open_public "
            "(--open-public) as well if you really mean the whole network"
        )

    if config.backplane and not config.backplane.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"backplane {config.backplane!r} must look like redis://HOST:PORT/DB")
    validate_edge(config)


def validate_edge(config: RelayConfig) -> None:
    """The connection caps, header deadline, trusted proxies and allowed origins."""
    for key in ("max_connections", "reserved_connections", "connections_per_address"):
        if getattr(config, key) < 0:
            raise ConfigError(f"{key} must be 0 or more, not {getattr(config, key)}")
    if config.max_connections and config.reserved_connections >= config.max_connections:
        raise ConfigError(
            f"reserved_connections ({config.reserved_connections}) must be less than "
            f"max_connections ({config.max_connections}): the rest is for everyone else"
        )
    if not 0 < config.header_timeout_s <= 300:
        raise ConfigError(
            f"header_timeout_s must be more than 0 and at most 300 seconds, "
            f"not {config.header_timeout_s:g}"
        )
    try:
        parse_networks(config.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(
            f"trusted_proxies: {exc}; give addresses or networks, comma-separated "
            '(e.g. "127.0.0.1, 10.0.0.0/8")'
        ) from None
    try:
        parse_origins(config.allowed_origins)
    except ValueError as exc:
        raise ConfigError(
            f"allowed_origins: {exc}; give scheme://host[:port] entries, comma-separated"
        ) from None


# --- the gateways' tables ----------------------------------------------------------------


@dataclass(frozen=True)
class TwilioConfig:
    """The `[twilio]` table. The gateway runs when the table is present (and `enabled`
    is not false); its webhook is PUBLIC_URL/twilio/voice."""

    enabled: bool = True
    # Twilio's auth token: every webhook and stream upgrade must carry a valid
    # X-Twilio-Signature. Empty (and no shared_keys): no check, and anyone can pose as
    # Twilio (warned at start). DIALJAM_TWILIO_AUTH_TOKEN, when set, replaces it.
    auth_token: str = ""
    # Webhooks Rules' shared keys, "KEYID:SECRET" entries separated by commas: a request
    # whose X-Twilio-Webhooks-Signature-Settings names a key id is checked with that
    # key and the algorithm it names (HMAC_SHA256). DIALJAM_TWILIO_SHARED_KEYS, when
    # set, replaces it (keep secrets out of the file).
    shared_keys: str = ""
    # A rehearsal without TLS: an http:// (or empty) public_url, which Twilio itself
    # refuses, is let through, but only when public_url's host is a loopback address.
    allow_insecure_url: bool = False
    # Said to the caller before the stream starts; empty: no greeting.
    greeting: str = "Welcome to dial jam. Press any key to play."
    # Where the callers' events go; empty: the relay's channel.
    channel: str = ""
    # Also listen for key tones in the callers' audio (phones whose keys reach Twilio
    # as sound, <Start><Stream>); a press Twilio also reports as `dtmf` counts once.
    inband_dtmf: bool = True

    def channel_for(self, relay: RelayConfig) -> str:
        return self.channel or relay.channel


@dataclass(frozen=True)
class AriConfig:
    """The `[ari]` table. The gateway runs when `url` is set: the relay connects out to
    Asterisk's ARI (http.conf, ari.conf) and takes the callers of the Stasis app."""

    # Asterisk's HTTP server, e.g. http://127.0.0.1:8088 (ws:// or wss:// also do);
    # the events socket is ws(s)://…/ari/events. Empty: no ARI gateway.
    url: str = ""
    # The Stasis application: the dialplan sends callers with `Stasis(dialjam)`.
    app: str = "dialjam"
    # An ARI user of ari.conf (REST calls use HTTP basic auth, the socket api_key).
    username: str = ""
    password: str = ""
    # Played after answering, before the caller joins; empty: none. Several media
    # URIs may be given comma-separated (sound:…, tone:…, recording:…).
    prompt: str = "sound:beep"
    # Where the callers' events go; empty: the relay's channel.
    channel: str = ""
    # The longest wait between two attempts to reach Asterisk (seconds).
    reconnect_max_s: float = 30.0
    # Asterisk unreachable this long: its callers leave (reason "lost"); those whose
    # calls are still in the app when it answers again come back.
    lost_after_s: float = 30.0
    # The phone music's RTP: this machine's address that Asterisk sends each call's RTP
    # to (bound, a free UDP port a call). Empty: the one we reach Asterisk from.
    media_host: str = ""

    def channel_for(self, relay: RelayConfig) -> str:
        return self.channel or relay.channel


@dataclass(frozen=True)
class SipConfig:
    """The `[sip]` table. The gateway runs when the table is present (and `enabled` is
    not false): a carrier's SIP trunk sends its INVITEs to host:port."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 5060
    transport: str = "udp"  # "udp", "tcp" or "both"
    tcp_idle_s: float = 300.0  # a TCP connection silent this long is closed
    # The address the carrier reaches, put in Contact and the SDP's c= line. Empty:
    # `host`, or this machine's LAN address when host is 0.0.0.0.
    public_address: str = ""
    rtp_ports: str = "20000-20999"  # the calls' RTP ports (even ones: one per call)
    # The carrier's addresses or networks, comma-separated; requests from elsewhere
    # are refused (`refuse`: "403" answers, "drop" stays silent). Empty: anyone.
    allow_from: str = ""
    refuse: str = "403"
    max_calls: int = 200
    answer_after_s: float = 0.0  # ring (180) this long before answering
    silence_s: float = 30.0  # no RTP this long: hang up
    max_call_s: float = 3600.0
    inband_dtmf: bool = True  # also hear the keys' tones in the audio
    # Register with the carrier (host[:port] of its registrar; empty: no REGISTER), as
    # register_user@register_domain (empty: the registrar's host), Digest-authenticated.
    register_registrar: str = ""
    register_user: str = ""
    register_password: str = ""
    register_domain: str = ""
    register_expires: int = 600
    channel: str = ""

    def channel_for(self, relay: RelayConfig) -> str:
        return self.channel or relay.channel

    def contact_address(self) -> str:
        if self.public_address:
            return self.public_address
        return self.host if self.host not in ("0.0.0.0", "::", "") else lan_address()

    def rtp_range(self) -> range:
        """The even ports of `rtp_ports` ("20000-20999"); `ValueError` when unreadable."""
        low, _, high = self.rtp_ports.partition("-")
        first, last = int(low), int(high or low)
        if not 1024 <= first <= last <= 65535:
            raise ValueError("ports must run from 1024 to 65535, low-high")
        return range(first + first % 2, last + 1, 2)


def _check_sip(config: SipConfig, origin: str) -> SipConfig:
    problems = []
    if not 0 <= config.port <= 65535:
        problems.append(f"port {config.port} is outside 0–65535")
    if config.transport not in ("udp", "tcp", "both"):
        problems.append(f'transport must be "udp", "tcp" or "both", not {config.transport!r}')
    if config.tcp_idle_s <= 0:
        problems.append("tcp_idle_s must be more than 0")
    if config.refuse not in ("403", "drop"):
        problems.append(f'refuse must be "403" or "drop", not {config.refuse!r}')
    try:
        if not config.rtp_range():
            problems.append("rtp_ports holds no even port")
    except ValueError as exc:
        problems.append(f"rtp_ports {config.rtp_ports!r}: {exc}")
    try:
        parse_networks(config.allow_from)
    except ValueError as exc:
        problems.append(f"allow_from: {exc}")
    if config.max_calls < 1 or min(config.silence_s, config.max_call_s) <= 0:
        problems.append("max_calls, silence_s and max_call_s must be more than 0")
    if config.register_registrar and (not config.register_user or config.register_expires < 60):
        problems.append("register_registrar needs register_user, and register_expires ≥ 60")
    if not 0 <= config.answer_after_s <= 60:
        problems.append("answer_after_s must be 0–60 seconds")
    if problems:
        raise ConfigError(f"{origin}: " + "; ".join(problems))
    return config


# --- the installation's file, read once -------------------------------------------------

# Settings that exist once for the whole installation, in [relay]: a table that names
# one of them is told where it lives.
INSTALLATION_SETTINGS = ("pseudonym_key",)


def read_installation_file(path: str | Path) -> dict[str, Any]:
    """The installation's TOML file as tables; a missing, unreadable or broken file
    raises `ConfigError` naming it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Installation:
    """What one installation's file and environment say: the relay's settings, the
    gateways' (None when their table is absent or turned off) and the file's tables
    as read, for the programs that embed the relay and keep a table of their own."""

    relay: RelayConfig
    twilio: TwilioConfig | None = None
    ari: AriConfig | None = None
    sip: SipConfig | None = None
    path: str = ""  # the file read; empty: none (defaults and environment only)
    tables: Mapping[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any] | None:
        """The file's `[name]` table (None when it has none); `ConfigError` when
        `name` is in the file but is not a table."""
        value = self.tables.get(name)
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{self.path}: [{name}] must be a table")
        return value

    def origin(self, name: str) -> str:
        """How errors name the `[name]` table ("venue.toml [billboard]")."""
        return f"{self.path} [{name}]"


def load_installation(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Installation:
    """The installation's settings from its file (`path`, else ``DIALJAM_CONFIG``,
    read once), the ``DIALJAM_*`` environment (`env`, default: the process's) and the
    relay's flag `overrides` (None: not given); raises `ConfigError` with a message
    for a person. Tokens are left as given: `fill_tokens` fills them."""
    env = os.environ if env is None else env
    path = path or env.get("DIALJAM_CONFIG") or None
    file = Installation(RelayConfig(), path=str(path or ""))
    if path:
        file = dataclasses.replace(file, tables=read_installation_file(path))
    relay = _relay(file, env, overrides or {})
    twilio = _gateway(file, "twilio", TwilioConfig)
    if twilio is not None and twilio.enabled:
        from .gateways.twilio_setup import check_twilio  # its checks live with the gateway

        twilio = check_twilio(twilio, relay, env, file.path)
    ari = _gateway(file, "ari", AriConfig)
    sip = _gateway(file, "sip", SipConfig)
    return dataclasses.replace(
        file,
        relay=relay,
        twilio=twilio if twilio is not None and twilio.enabled else None,
        ari=_check_ari(ari, file.origin("ari")) if ari is not None and ari.url else None,
        sip=_check_sip(sip, file.origin("sip")) if sip is not None and sip.enabled else None,
    )


def _relay(file: Installation, env: Mapping[str, str], overrides: Mapping[str, Any]) -> RelayConfig:
    """defaults < [relay] < DIALJAM_* < flags, validated."""
    values = table_settings(file.table("relay") or {}, _TYPES, file.origin("relay"))
    for key in _TYPES:
        name = f"DIALJAM_{key.upper()}"
        if name in env:
            values[key] = _coerce(key, env[name], f"environment {name}")
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    config = RelayConfig(**values)
    validate(config)
    return config


def check_not_installation_wide(table: Mapping[str, Any], origin: str) -> None:
    """A setting the whole installation shares, given in another table: say where it
    lives instead of that it is unknown."""
    for key in INSTALLATION_SETTINGS:
        if key in table:
            raise ConfigError(
                f"{origin} has no setting {key!r}: the installation has one {key}, in "
                "[relay] (every door keys callers the same way)"
            )


class GatewayConfig(Protocol):
    """What the shared loader needs of a gateway's settings: a frozen dataclass with a
    `channel` (empty: the relay's)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def channel(self) -> str: ...


_Gateway = TypeVar("_Gateway", bound=GatewayConfig)


def _gateway(file: Installation, name: str, cls: type[_Gateway]) -> _Gateway | None:
    """A gateway's `[name]` table as `cls`; None when the file has no such table (an
    empty one: the defaults). Unknown keys, wrong types and a bad `channel` raise
    `ConfigError`."""
    values = file.table(name)
    if values is None:
        return None
    origin = file.origin(name)
    check_not_installation_wide(values, origin)
    config = cls(**table_settings(values, {f.name: str(f.type) for f in fields(cls)}, origin))
    if config.channel:
        check_channel(config.channel, f"{origin}: ")
    return config


def _check_ari(config: AriConfig, origin: str) -> AriConfig:
    """The `[ari]` settings that only make sense together with a `url`."""
    if not config.url.startswith(("http://", "https://", "ws://", "wss://")):
        raise ConfigError(
            f"{origin}: url {config.url!r} must start with http://, https://, ws:// or wss:// "
            "(Asterisk's HTTP server, e.g. http://127.0.0.1:8088)"
        )
    if not config.app or any(ch in config.app for ch in "/?&#%, ") or len(config.app) > 64:
        raise ConfigError(
            f"{origin}: app {config.app!r} must be 1–64 characters without / ? & # % , "
            "or spaces (the name given to Stasis() in the dialplan)"
        )
    if config.reconnect_max_s <= 0:
        raise ConfigError(f"{origin}: reconnect_max_s must be more than 0")
    if config.lost_after_s <= 0:
        raise ConfigError(f"{origin}: lost_after_s must be more than 0")
    return config


# The relay's part of the installation alone (the tests of its settings).


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RelayConfig:
    """The relay's settings of `load_installation`."""
    return load_installation(path, env, overrides).relay
