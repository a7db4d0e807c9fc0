"""python -m relay.rehearsal: the rehearsal crowd's command line (relay/rehearsal/crowd.py
says what it plays and checks)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..config import ConfigError, load_installation
from .crowd import run_crowd
from .plan import MAX_CALLERS, STYLES, VIAS, CrowdOptions, UsageError, validate


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own: one line, not the usage
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m relay.rehearsal",
        description="The rehearsal crowd: simulated callers play a running relay through "
        "one ingress path while a subscriber checks that every key press arrives.",
        epilog="Paths: ws = browser keypads on /ws; twilio = the signed voice webhook, then a "
        "Media Stream with 20 ms silence frames and dtmf messages; twilio-audio = the same "
        "with each key as a tone in the audio (the relay's in-band detector); both take the "
        "phone music the relay sends back as Twilio does (marks echoed once played) and "
        "count it; ari = a fake "
        "Asterisk the relay's [ari] client connects to. "
        "Exit status: 0 every caller got through and every press arrived once, in "
        "order; 1 otherwise; 2 a bad option. Ctrl-C hangs everyone up and reports.",
    )
    p.add_argument(
        "--callers",
        type=int,
        default=8,
        help=f"concurrent callers (default 8, at most {MAX_CALLERS})",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=2.0,
        help="key presses a second per caller, on average (default 2). --via ws: keep it below the "
        "relay's limit for peers without a token (20 frames a second, burst 40): a "
        "keypad's presses above it are refused. --via twilio-audio: at most 6",
    )
    p.add_argument(
        "--duration", type=float, default=20.0, help="seconds each caller plays (default 20)"
    )
    p.add_argument(
        "--ramp",
        type=float,
        default=2.0,
        help="callers join spread over this many seconds (default 2)",
    )
    p.add_argument(
        "--style",
        default="human",
        choices=STYLES,
        help="how callers press (default human): human = each at its own pace, in phrases "
        "of 3–12 quick presses with pauses between, mostly a few favourite keys, motifs "
        "repeated and varied; steady = one press every 1/rate seconds, keys uniform (the "
        "same number of presses, evenly spread)",
    )
    p.add_argument("--via", default="ws", choices=VIAS, help="the ingress path (default ws)")
    p.add_argument(
        "--relay",
        help="the running relay (default: [relay] public_url of --config, "
        "DIALJAM_PUBLIC_URL, else http://127.0.0.1:PORT)",
    )
    p.add_argument(
        "--check-relay",
        help="the relay the arrival check subscribes to (default: --relay); another relay "
        "sharing the channels through a backplane checks that every press crossed it",
    )
    p.add_argument("--channel", help="the channel to play (default: the config's, or dialjam)")
    p.add_argument(
        "--config",
        help="the installation's TOML file: [relay] channel, public_url, rate, [twilio] "
        "auth_token and channel, [ari] url and channel (default DIALJAM_CONFIG)",
    )
    p.add_argument(
        "--public-url",
        help="the relay's public_url, which Twilio signs (default: the config's, else --relay)",
    )
    p.add_argument(
        "--twilio-token", help="Twilio's auth token, to sign webhooks (overrides the config)"
    )
    p.add_argument(
        "--twilio-shared-key",
        metavar="KEYID:SECRET",
        help="sign as a Webhooks Rule does: HMAC_SHA256 with this shared key, named in "
        "X-Twilio-Webhooks-Signature-Settings (default: the config's first [twilio] "
        "shared_keys entry when it has no auth_token)",
    )
    p.add_argument(
        "--ari-listen",
        metavar="HOST:PORT",
        help="--via ari: where the fake Asterisk listens (default: the host and port of "
        "the config's [ari] url, else 127.0.0.1:8088)",
    )
    p.add_argument(
        "--ari-wait",
        type=float,
        default=60.0,
        help="--via ari: seconds to wait for the relay to connect (default 60)",
    )
    p.add_argument(
        "--sip",
        metavar="HOST:PORT",
        help="--via sip: the relay's SIP listener (default: the config's [sip] host and "
        "port, else 127.0.0.1:5060)",
    )
    p.add_argument("--seed", type=int, help="the keys' random seed (default: random, printed)")
    p.add_argument("--no-check", action="store_true", help="do not subscribe and check arrival")
    p.add_argument(
        "--drain", type=float, default=3.0, help="seconds to wait for late events (default 3)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def parse_options(
    argv: Sequence[str] | None = None, env: dict[str, str] | None = None
) -> tuple[CrowdOptions, bool]:
    """Options from the command line and the installation's config; (options, json).
    Raises `UsageError`."""
    args = build_parser().parse_args(argv)
    env = dict(os.environ) if env is None else env
    try:
        installation = load_installation(args.config, env=env)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    relay_cfg, twilio_cfg, ari_cfg = installation.relay, installation.twilio, installation.ari
    sip_cfg = installation.sip
    sip = args.sip or (
        f"{sip_cfg.host if sip_cfg.host not in ('0.0.0.0', '') else '127.0.0.1'}:{sip_cfg.port}"
        if sip_cfg is not None
        else "127.0.0.1:5060"
    )
    sip_host, _, sip_port = sip.rpartition(":")
    if not sip_host or not sip_port.isdigit() or not 0 < int(sip_port) <= 65535:
        raise UsageError(f"--sip {sip!r} must be HOST:PORT")
    listen = args.ari_listen
    if listen is None:
        ari_url = urlsplit(ari_cfg.url) if ari_cfg is not None else None
        listen = (
            f"{ari_url.hostname}:{ari_url.port or 8088}"
            if ari_url is not None and ari_url.hostname
            else "127.0.0.1:8088"
        )
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--ari-listen {listen!r} must be HOST:PORT")
    public = args.public_url or relay_cfg.public_url
    relay = args.relay or relay_cfg.public_url or f"http://127.0.0.1:{relay_cfg.port}"
    channel = args.channel
    if channel is None:
        # A gateway may have a channel of its own ([twilio] / [ari] channel).
        gateways = {
            "twilio": twilio_cfg,
            "twilio-audio": twilio_cfg,
            "ari": ari_cfg,
            "sip": sip_cfg,
        }
        gateway = gateways.get(args.via)
        channel = gateway.channel_for(relay_cfg) if gateway is not None else relay_cfg.channel
    ari_user = (
        {"ari_app": ari_cfg.app, "ari_username": ari_cfg.username, "ari_password": ari_cfg.password}
        if ari_cfg is not None
        else {}
    )
    token = args.twilio_token
    if token is None:
        token = twilio_cfg.auth_token if twilio_cfg is not None else ""
    shared_key = args.twilio_shared_key
    if shared_key is None:
        shared = twilio_cfg.shared_keys.replace(",", " ").split() if twilio_cfg else []
        shared_key = shared[0] if shared and not token else ""
    options = CrowdOptions(
        callers=args.callers,
        rate=args.rate,
        duration=args.duration,
        ramp=args.ramp,
        via=args.via,
        relay=relay.rstrip("/"),
        check_relay=(args.check_relay or "").rstrip("/"),
        channel=channel,
        public_url=public,
        twilio_token=token,
        twilio_shared_key=shared_key,
        ari_listen=(host.strip("[]"), int(port)),
        **ari_user,
        ari_wait=args.ari_wait,
        sip_target=(sip_host.strip("[]"), int(sip_port)),
        seed=args.seed,
        check=not args.no_check,
        drain=args.drain,
        relay_rate=relay_cfg.rate,
        style=args.style,
    )
    validate(options)
    return options, bool(args.json)


def raise_fd_limit(callers: int) -> None:
    """Each caller is a socket (two on one machine with the relay)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * callers + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(hard, want)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


async def _main(options: CrowdOptions, as_json: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        print("stopping: every caller hangs up (Ctrl-C again to quit at once)", file=sys.stderr)
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    report = await run_crowd(
        options, say=lambda line: print(line, file=sys.stderr, flush=True), stop=stop
    )
    if as_json:
        print(json.dumps(dataclasses.asdict(report) | {"ok": report.ok}, indent=2))
    else:
        print(report.render())
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options, as_json = parse_options(argv)
    except UsageError as exc:
        print(f"python -m relay.rehearsal: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise_fd_limit(options.callers)
    try:
        from ..runtime import event_loop_factory

        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(_main(options, as_json))
    except KeyboardInterrupt:
        return 1
