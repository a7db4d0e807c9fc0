"""What the relay's and the billboard's command lines share: the open-mode flags, the
installation's settings from arguments, logging, the event loop, the operator's
announcement and the relay's serve loop. `__main__` modules only parse arguments and
call these."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import signal
import sys
from collections.abc import Callable

from .app import create_app, listen
from .config import (
    AriConfig,
    Installation,
    RelayConfig,
    SipConfig,
    TwilioConfig,
    load_installation,
)
from .gateways.twilio_signature import parse_shared_keys
from .reach import Reach, probe_in_background, reach_key

log = logging.getLogger("relay")


def add_open_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--open",
        action="store_const",
        const=True,
        help="rehearsal: anyone may publish, as in 2010 (only on a loopback --host)",
    )
    p.add_argument(
        "--open-public",
        action="store_const",
        const=True,
        help="with --open: allow it on a public address too (anyone on the network can "
        "play as anyone and fill the relay)",
    )


def announce(
    config: RelayConfig,
    made_up: list[str],
    say: Callable[[str], None],
    twilio: TwilioConfig | None = None,
    ari: AriConfig | None = None,
    sip: SipConfig | None = None,
) -> None:
    """Tell the operator where everything is (stdout, not the log: tokens never go to
    a log file)."""
    base = config.base_url()
    ws_base = base.replace("http", "ws", 1)
    say(f"dialjam relay listening on {config.host}:{config.port}")
    say(f"  WebSocket:  {ws_base}/ws   (seed clients: {ws_base}/)")
    say(f"  keypad:     {config.keypad_url()}")
    say(f"  console:    {config.console_url()}")
    say(f"  health:     {base}/healthz   metrics: {base}/metrics")
    if config.open:
        say(
            "  warning:    OPEN mode: anyone who reaches this relay may publish as any caller "
            "(a rehearsal setting, never a show's)"
        )
    tokens = [role for role in made_up if role != "pseudonym"]
    if tokens:
        say(
            f"  tokens:     made up for this run ({', '.join(tokens)}); set operator_token "
            "and billboard_token in [relay] to keep them"
        )
        if "billboard" in tokens:
            say(f"  billboard token: {config.billboard_token}")
    if "pseudonym" in made_up:
        say(
            "  callers:    pseudonyms keyed for this run only; set pseudonym_key (or "
            "operator_token) in [relay] to keep a caller's pseudonym across restarts"
        )
    if twilio is not None:
        say(
            f"  Twilio:     voice webhook {base}/twilio/voice (HTTP POST), channel "
            f"{twilio.channel_for(config)}"
        )
        say(f"              stream status callback {base}/twilio/stream-status (in the TwiML)")
        if twilio.allow_insecure_url and not base.startswith("https://"):
            say(
                "  warning:    [twilio] allow_insecure_url: a rehearsal on this machine; "
                "Twilio itself needs public_url = https://… on port 443"
            )
        if twilio.shared_keys:
            ids = sorted(parse_shared_keys(twilio.shared_keys))
            say(f"              shared keys (HMAC_SHA256 Webhooks Rules): {', '.join(ids)}")
        if not (twilio.auth_token or twilio.shared_keys):
            say(
                "  warning:    [twilio] auth_token is empty: signatures are not checked, "
                "anyone can pose as Twilio"
            )
    if ari is not None:  # never the password
        say(
            f"  Asterisk:   ARI client of {ari.url} app {ari.app} (dialplan: Stasis({ari.app})), "
            f"channel {ari.channel_for(config)}"
        )
        say(
            f"  dialplan:   exten => _[+0-9].,1,Stasis({ari.app}) and "
            f"exten => s,1,Stasis({ari.app}); Asterisk takes any app name, "
            "so /healthz ari.app_proven stays false until a call enters it"
        )
        if not ari.username:
            say("  warning:    [ari] username is empty: Asterisk will refuse the client")
    if sip is not None:
        say(
            f"  SIP trunk:  {sip.transport} {sip.host}:{sip.port} (contact "
            f"{sip.contact_address()}), RTP ports {sip.rtp_ports}, "
            f"channel {sip.channel_for(config)}"
        )
        if not sip.allow_from:
            say(
                "  warning:    [sip] allow_from is empty: anyone who reaches the port can call; "
                "set it to the carrier's addresses"
            )


async def serve(
    config: RelayConfig,
    made_up: list[str],
    twilio: TwilioConfig | None = None,
    ari: AriConfig | None = None,
    sip: SipConfig | None = None,
) -> int:
    app = create_app(config, twilio, ari, sip)
    try:
        runner = await listen(app, config.host, config.port, reuse_address=True)
    except OSError as exc:
        print(
            f"dialjam relay: cannot listen on {config.host}:{config.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    if config.port == 0 and runner.addresses:
        config = dataclasses.replace(config, port=runner.addresses[0][1])
    announce(config, made_up, lambda line: print(line, flush=True), twilio, ari, sip)
    # What start-up made lives as long as the relay: left out of every later garbage
    # collection, so a full one no longer stops every client for the whole process's
    # objects (billboard/show.py says more).
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    probing = None
    if config.public_url:  # bounded, and the relay serves meanwhile (relay/reach.py)
        probing = loop.create_task(
            probe_in_background(config.public_url, reach_key(config.billboard_token), say_reach)
        )
    await stop.wait()
    if probing is not None:
        probing.cancel()
    log.info("shutting down: closing every client with 1001 Going Away")
    await runner.cleanup()
    return 0


def say_reach(reach: Reach) -> None:
    """The reachability probe's answer, after the start lines: loud when it failed."""
    word = "public:     " if reach.ok else "warning:    public address "
    print(f"  {word}{reach.line}", flush=True)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed (about twice the fan-out rate), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def installation_from_args(args: argparse.Namespace) -> Installation:
    """The installation's settings from --config (or DIALJAM_CONFIG), the environment
    and the relay's flags (the billboard, which embeds the relay, takes the same
    flags). Raises `ConfigError`."""
    return load_installation(
        args.config,
        overrides={
            "host": args.host,
            "port": args.port,
            "channel": args.channel,
            "public_url": args.public_url,
            "open": getattr(args, "open", None),
            "open_public": getattr(args, "open_public", None),
            "backplane": getattr(args, "backplane", None),
        },
    )
