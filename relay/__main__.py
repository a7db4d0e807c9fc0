"""python -m relay [--host H] [--port P] [--config FILE]: parses the arguments and
runs the relay (relay/runtime.py does the work)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from .config import ConfigError, fill_tokens
from .runtime import (
    add_open_flags,
    event_loop_factory,
    installation_from_args,
    serve,
    setup_logging,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m relay",
        description="dialjam relay: the WebSocket hub between phones, keypads and the billboard.",
        epilog="Every setting can also come from the [relay] table of --config or from "
        "DIALJAM_<SETTING> environment variables (e.g. DIALJAM_PORT); flags win.",
    )
    p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080; 0 = any free)")
    p.add_argument(
        "--config",
        help="the installation's TOML file (its [relay], [twilio], [ari] and [sip] tables)",
    )
    p.add_argument("--channel", help="the installation's channel (default dialjam)")
    p.add_argument("--public-url", help="address phones and providers reach")
    p.add_argument(
        "--backplane",
        help="share every channel with other relays through Redis: redis://HOST:PORT/DB",
    )
    add_open_flags(p)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    try:
        site = installation_from_args(args)
    except ConfigError as exc:
        print(f"dialjam relay: error: {exc}", file=sys.stderr)
        return 2
    config, made_up = fill_tokens(site.relay)
    if config.backplane and made_up:
        print(
            "dialjam relay: error: relays sharing a backplane must share their secrets: set "
            f"{', '.join(n + '_token' if n != 'pseudonym' else 'session_key' for n in made_up)} "
            "in [relay] (or DIALJAM_*), the same on every relay",
            file=sys.stderr,
        )
        return 2
    with (
        asyncio.Runner(loop_factory=event_loop_factory()) as runner,
        contextlib.suppress(KeyboardInterrupt),
    ):
        return runner.run(serve(config, made_up, site.twilio, site.ari, site.sip))
    return 0


if __name__ == "__main__":
    sys.exit(main())
