"""python -m billboard — the projector program, with its relay embedded by default."""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from relay.config import ConfigError, Installation, fill_tokens
from relay.runtime import add_open_flags, installation_from_args, setup_logging

from .config import BillboardConfig, load_billboard_config
from .outputs import NoteSink
from .recorder import MidiRecorder, recording
from .show import Options, Show

if TYPE_CHECKING:  # imported when they open: the mixer and rtmidi load with them
    from .midi_out import MidiOut
    from .sound import SoundOut

log = logging.getLogger("billboard")

# Seconds a stop (SIGTERM, Ctrl-C) may take before the stacks are dumped and it ends.
STOP_DEADLINE_S = 20.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m billboard",
        description="dialjam billboard: callers' digits become music and light on a facade.",
        epilog="Settings come from the [billboard] and [relay] tables of --config; flags win.",
    )
    a = p.add_argument
    a("--config", help="the installation's TOML file")
    a("--relay", help="ws(s)://host/ws of a remote relay (default: run one in-process)")
    a("--port", type=int, help="port of the embedded relay (default 8080)")
    a("--host", help="address of the embedded relay (default 0.0.0.0)")
    a("--channel", help="the installation's channel (default dialjam)")
    a("--token", help="the billboard token of a remote relay")
    a("--public-url", help="address phones and providers reach (for the QR code)")
    a("--phone", help="the number shown on the banner")
    a("--bpm", type=float, help="tempo (default 112)")
    a("--key", help="key (default C)")
    a("--style", help="the groove bed: pop (default), house, hiphop, or none")
    a("--display", type=int, help="which display to fill (default 0)")
    a("--windowed", action="store_true", default=None, help="a window, not full screen")
    a("--size", help="window size, e.g. 1920x1080")
    a("--layout", help="dashboard (a flat screen, default) or projection (on a building)")
    a("--headless", action="store_true", help="no screen (SDL dummy drivers)")
    a("--duration", type=float, help="stop after this many seconds")
    a("--screenshot", type=Path, help="save the last frame to this PNG")
    a("--no-sound", action="store_true", help="no speakers")
    a(
        "--no-phone-music",
        action="store_true",
        help="callers hear no music down the phone line (no phone mix rendered or sent)",
    )
    a("--midi-port", help="MIDI output port (substring of its name)")
    a("--midi-virtual", help="create a virtual MIDI output port of this name")
    a("--midi-api", help="alsa, jack, coremidi or winmm")
    a("--list-midi-ports", action="store_true", help="list MIDI output ports and exit")
    a("--list-displays", action="store_true", help="list the displays and their sizes, and exit")
    a(
        "--lights",
        choices=("artnet", "sacn", "off"),
        help="send the facade to DMX fixtures over Art-Net or sACN ([billboard.lights])",
    )
    a("--lights-target", help="the Art-Net node's or sACN receiver's address (sACN: multicast)")
    a("--record", type=Path, help="write the session to this Standard MIDI File")
    a("--log-events", type=Path, help="log input events to this JSON-lines file")
    a("--replay", type=Path, help="play the events of a --log-events file")
    a(
        "--render",
        type=Path,
        metavar="FILE.wav",
        help="with --replay: render its night offline to this WAV file, faster than real "
        "time (no window, sound card or relay), and exit; --record writes its MIDI",
    )
    add_open_flags(p)  # the embedded relay's rehearsal mode
    a("--log-level", default="INFO")
    return p.parse_args(argv)


def load(args: argparse.Namespace) -> tuple[BillboardConfig, Installation]:
    """The billboard's settings and the installation's (the file read once); the
    gateways only when the relay runs in this process. Raises `ConfigError`."""
    installation = installation_from_args(args)
    board = load_billboard_config(
        installation,
        overrides={
            "relay": args.relay,
            "channel": args.channel,
            "token": args.token,
            "phone": args.phone,
            "bpm": args.bpm,
            "key": args.key,
            "style": args.style,
            "display": args.display,
            "windowed": args.windowed,
            "size": args.size,
            "layout": args.layout,
            "sound": False if args.no_sound else None,
            "phone_music": False if args.no_phone_music else None,
            "midi_port": args.midi_port,
            "midi_virtual": args.midi_virtual,
            "midi_api": args.midi_api,
            "lights": args.lights,
            "lights_target": args.lights_target,
        },
    )
    if board.relay:  # a remote relay runs the gateways
        installation = dataclasses.replace(installation, twilio=None, ari=None, sip=None)
    return board, installation


def has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_sinks(
    config: BillboardConfig, options: Options
) -> tuple[list[NoteSink], SoundOut | None, MidiOut | None]:
    """The outputs that open (all, speakers, MIDI); each that cannot says why, and the
    show goes on without it."""
    sinks: list[NoteSink] = []
    midi: MidiOut | None = None
    sound: SoundOut | None = None
    if config.sound:
        try:
            from .sound import SoundOut

            sound = SoundOut(
                options.sounds_dir, config.tracks, buffer=config.sound_buffer, bpm=config.bpm
            )
            sinks.append(sound)
        except OSError as exc:
            print(f"dialjam billboard: no sound: {exc}", file=sys.stderr)
    if config.midi_port or config.midi_virtual:
        try:
            from .midi_out import MidiOut

            midi = MidiOut.open(
                config.midi_port or None,
                virtual=config.midi_virtual or None,
                api=config.midi_api or None,
                tracks=config.tracks,
                bed=config.bed_midi(),
            )
            midi.send_programs()
            sinks.append(midi)
            print(f"dialjam billboard: MIDI out on {midi.name}")
        except OSError as exc:
            print(f"dialjam billboard: no MIDI, sound only: {exc}", file=sys.stderr)
    if options.record:
        sinks.append(recording(options.record, config))
    return sinks, sound, midi


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    setup_logging(args.log_level)
    if args.list_midi_ports:
        return list_midi_ports(args.midi_api)
    if args.list_displays:
        return list_displays()
    if args.render and not args.replay:
        print("dialjam billboard: error: --render needs --replay FILE.jsonl", file=sys.stderr)
        return 2
    try:
        board, installation = load(args)
    except ConfigError as exc:
        print(f"dialjam billboard: error: {exc}", file=sys.stderr)
        return 2
    if args.render:
        return render(board, args)
    headless = args.headless
    if not headless and not has_display():
        print(
            "dialjam billboard: no display here (DISPLAY is not set): running headless; "
            "relay, keypad, MIDI and recording still work",
            file=sys.stderr,
        )
        headless = True
    if headless:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        if not board.sound:
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    options = Options(
        headless=headless,
        duration=args.duration,
        record=args.record,
        log_events=args.log_events,
        replay=args.replay,
        screenshot=args.screenshot,
        config=Path(installation.path) if installation.path else None,
    )
    sinks, sound, midi = open_sinks(board, options)
    relay, made_up = fill_tokens(installation.relay)
    twilio, ari, sip = installation.twilio, installation.ari, installation.sip
    show = Show(board, relay, options, sinks=sinks, midi=midi, twilio=twilio, ari=ari, sip=sip)
    for sink in sinks:
        if isinstance(sink, MidiRecorder):
            sink.start(show.start)  # the file's time zero is the show's
    stop = threading.Event()

    def on_stop(*_: object) -> None:
        # A stop that hangs is a bug to find, never a process left running: after
        # STOP_DEADLINE_S every thread's stack goes to stderr and the process ends.
        if not stop.is_set():
            faulthandler.dump_traceback_later(STOP_DEADLINE_S, exit=True)
        stop.set()

    # Before the relay starts and says where it listens: a stop from then on (a test,
    # systemd, an operator's Ctrl-C) closes the clients cleanly, never the default
    # handler's abrupt death.
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    try:
        show.start_background()
    except OSError as exc:
        print(f"dialjam billboard: cannot start the relay: {exc.strerror or exc}", file=sys.stderr)
        return 1
    # Where the relay really listens (a port of 0 is the system's choice): the QR code too.
    relay = dataclasses.replace(relay, port=show.relay_port or relay.port)
    if not board.relay:
        from relay.runtime import announce

        announce(relay, made_up, print, twilio, ari, sip)
    from .frontend import NoScreen, run_frontend

    began = time.monotonic()
    try:
        run_frontend(show, board, relay, options, stop, sound)
    except NoScreen as exc:
        print(f"dialjam billboard: error: {exc}", file=sys.stderr)
        print(
            "  python -m billboard --list-displays shows the displays; --display N picks one, "
            "--headless runs without a screen",
            file=sys.stderr,
        )
        return 3
    finally:
        show.stop()
    print("\n".join(stopped(show, sinks, time.monotonic() - began)))
    return 0


def stopped(show: Show, sinks: Sequence[NoteSink], seconds: float) -> list[str]:
    """The stop summary's lines, once every output has closed."""
    from .summary import stop_lines

    recorded = None
    for sink in sinks:
        if isinstance(sink, MidiRecorder):
            notes, length = sink.length()
            recorded = (sink.path, notes, length)
    events = show.eventlog
    logged = (events.path, events.written) if events is not None else None
    phone = show.phone_summary()
    return stop_lines(seconds, recorded, logged) + ([f"  {phone}"] if phone else [])


def list_displays() -> int:
    """--list-displays: each display SDL sees, with its size, or why there is none."""
    import pygame

    if not has_display():
        print("dialjam billboard: no display here (DISPLAY is not set)", file=sys.stderr)
        return 1
    try:
        pygame.display.init()
    except pygame.error as exc:
        print(f"dialjam billboard: SDL cannot reach the screens: {exc}", file=sys.stderr)
        return 1
    sizes = pygame.display.get_desktop_sizes()
    rates = pygame.display.get_desktop_refresh_rates()
    for index, ((w, h), rate) in enumerate(zip(sizes, rates, strict=False)):
        print(f"{index}: {w}×{h}" + (f" at {rate} Hz" if rate else ""))
    pygame.display.quit()
    return 0


def list_midi_ports(api: str | None) -> int:
    """--list-midi-ports: the ports of each MIDI system that is there (JACK, ALSA …),
    and why any other is not. Exit 0 when one was there (even with no ports), 1 when
    none was: then no MIDI can go out, and the message says how to get a system."""
    from .midi_ports import survey, unavailable

    try:
        lists = survey(api)
    except OSError as exc:  # an unknown API, or one not built in
        print(f"dialjam billboard: {exc}", file=sys.stderr)
        return 1
    if all(found.problem is not None for found in lists):
        print(f"dialjam billboard: {unavailable(lists, api)}", file=sys.stderr)
        return 1
    for found in lists:
        if found.problem is not None:
            print(f"{found.api}: {found.problem}")
            continue
        print(f"{found.api}: {len(found.ports)} MIDI output port(s) (--midi-api {found.api})")
        print("\n".join(f"  {name}" for name in found.ports) or "  (none yet)")
    return 0


def render(board: BillboardConfig, args: argparse.Namespace) -> int:
    """--replay with --render: the night offline, then its closing line."""
    from .offline import RenderError, render_night

    try:
        rendered = render_night(
            board,
            args.replay,
            args.render,
            record=args.record,
            duration=args.duration,
            sounds_dir=Options().sounds_dir,
        )
    except RenderError as exc:
        print(f"dialjam billboard: {exc}", file=sys.stderr)
        return 1
    print(rendered.summary())
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
