"""The main thread: draw the scene, read the keys, keep time for `--duration`.

The engine plays on its own thread (scheduler.py); a slow frame here never delays a
note. Once the screen is open the operator is told what opened (billboard/summary.py);
a screen that cannot open stops the show (`NoScreen`) rather than leave a black wall.
Headless (asked for, or no display on the machine), relay, keypad, MIDI and recording
keep working.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from relay.config import RelayConfig
from relay.ratelimit import LogOnce

from .config import BillboardConfig
from .engine.events import Command
from .outputs import Flushes, NoteSink
from .show import Options, Show
from .summary import Opened, reach_lines, start_lines

if TYPE_CHECKING:  # imported when the speakers open: it opens pygame.mixer
    from .display import Display
    from .sound import SoundOut

log = logging.getLogger("billboard.frontend")

FPS = 60
FLUSH_EVERY_S = 10.0  # a recording is rewritten this often: a crash loses little
HEADLESS_DEFAULT_SIZE = (1280, 720)


def flush_all(sinks: Sequence[NoteSink], failures: LogOnce, now: float) -> None:
    """Rewrite every recording so far. A disk that is full or gone costs a warning
    every five minutes, never the show: the previous file stays as it was and the
    next flush tries again."""
    for sink in sinks:
        if not isinstance(sink, Flushes):
            continue
        try:
            sink.flush()
        except OSError as exc:
            failures.log(
                log,
                logging.WARNING,
                sink.name,
                "cannot write the recording (%s); the show goes on, trying again",
                exc.strerror or exc,
                now=now,
            )


class NoScreen(OSError):
    """The screen asked for could not be opened."""


def opened(
    show: Show,
    board: BillboardConfig,
    relay: RelayConfig,
    options: Options,
    display: Display | None,
    sound: SoundOut | None,
) -> Opened:
    """What this billboard opened, for the start summary."""
    if sound is not None:
        heard = sound.describe()
    elif board.sound:
        heard = "none: the speakers did not open (the reason is above)"
    else:
        heard = "off (--no-sound)"
    lights = board.lights
    layout = "dashboard"
    if board.layout == "projection":
        layout = f"projection ({board.floors} × {board.bays} windows)"
    return Opened(
        display=display.describe() if display is not None else "none",
        layout=layout,
        sound=heard,
        midi=_midi(show),
        record=options.record,
        log_events=options.log_events,
        lights=f"{lights.protocol} → {lights.target or 'multicast'}" if lights.protocol else "off",
        keypad_url=relay.keypad_url(),
        public_url=relay.public_url,
        phone=_phone(show, board),
    )


def _phone(show: Show, board: BillboardConfig) -> str:
    """What callers hear down the line, for the start summary."""
    if show.phone_link is not None:
        return f"the show's mix, 8 kHz, sent to {show.phone_link.url} for the calls"
    if not board.phone_music:
        return "off: calls hear only their greeting ([billboard] phone_music, --no-phone-music)"
    return "off: the relay has phone music off ([relay] phone_music = false)"


def _midi(show: Show) -> str | None:
    """The MIDI port, and who resends a synth patched in later its sounds and time."""
    midi = show.midi
    if midi is None:
        return None
    follows = getattr(midi, "follows", None)  # a MidiOut; a test's stand-in may not say
    if follows:
        return f"{midi.name} (a synth connected later is noticed: {follows})"
    return f"{midi.name} (after patching a synth in, press R or the console's MIDI sync)"


def _sound_state(sound: SoundOut | None, muted: bool) -> str:
    """The HUD's word for the speakers: never "on" when nothing can be heard."""
    if sound is None:
        return "off"
    if muted:
        return "muted"
    return "silent (dummy driver)" if sound.silent else "on"


def run_frontend(
    show: Show,
    board: BillboardConfig,
    relay: RelayConfig,
    options: Options,
    stop: threading.Event,
    sound: SoundOut | None = None,
) -> None:
    """Run until Esc Esc, a signal (`stop`) or `options.duration`."""
    import pygame

    from .calibrate import Calibrator
    from .controls import HELP_LINES, Keyboard, Resized, Ui, read_controls
    from .display import Banner, Display, Hud
    from .projection import default_projection

    pygame.display.init()
    pygame.font.init()
    size = board.window_size()
    if size is None and (options.headless or board.windowed):
        size = HEADLESS_DEFAULT_SIZE
    banner = Banner(board.phone or None, relay.keypad_url())
    try:
        display: Display | None = Display(
            size=size,
            fullscreen=not (board.windowed or options.headless),
            display=board.display,
            banner=banner,
            windows=board.windows or None,
            projection=board.projection if board.layout == "projection" else None,
        )
    except OSError as exc:
        # On a show machine a screen that does not open is a black wall: say so and stop,
        # rather than play on unseen (`python -m billboard` exits 3).
        raise NoScreen(str(exc)) from exc
    print("\n".join(start_lines(opened(show, board, relay, options, display, sound))), flush=True)
    if relay.public_url:  # answered on the relay's thread, the show already under way
        show.probe_public(relay.public_url, lambda r: print("\n".join(reach_lines(r)), flush=True))
    # C calibrates the mapping on the live output (from an even grid on a dashboard).
    calibrator = Calibrator(
        board.projection or default_projection(board.floors, board.bays),
        floors=board.floors,
        bays=board.bays,
        path=options.config,
        size=display.size if display is not None else HEADLESS_DEFAULT_SIZE,
    )
    keyboard = Keyboard()
    show_hud = show_test = show_help = cursor_shown = street_said = False
    muted = False
    frame_ms: deque[float] = deque(maxlen=120)
    start = time.monotonic()
    deadline = start + options.duration if options.duration else None
    last = start
    next_flush = start + FLUSH_EVERY_S
    flush_failures = LogOnce(every_s=300.0)
    frames, fps_since = 0, start
    try:
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_flush:
                next_flush = now + FLUSH_EVERY_S
                flush_all(show.scheduler.sinks, flush_failures, now)
            if display is None:
                stop.wait(0.1 if deadline is None else min(0.1, max(0.0, deadline - now)))
                continue
            scene = show.scene
            for control in read_controls(
                keyboard,
                now=now,
                bpm=scene.bpm,
                key=scene.key,
                paused=scene.paused,
                calibrating=calibrator.active,
            ):
                if calibrator.handle(control):
                    pass  # the calibration mode's: C, its keys and the mouse
                elif isinstance(control, Command):
                    show.submit(control)
                elif isinstance(control, Resized):
                    pass  # the display lays itself out again at the next draw
                elif isinstance(control, Ui):
                    action = control.action
                    if action == "quit":
                        stop.set()
                    elif action == "fullscreen":
                        display.toggle_fullscreen()
                        cursor_shown = False  # a new mode hides it: shown again if calibrating
                    elif action == "hud":
                        show_hud = not show_hud
                    elif action == "test_pattern":
                        show_test = not show_test
                    elif action == "help":
                        show_help = not show_help
                    elif action == "mute_sound":
                        muted = not muted
                        if sound is not None:
                            sound.set_muted(muted)
            if calibrator.active != cursor_shown:  # the pointer, to drag handles with
                cursor_shown = calibrator.active
                display.show_cursor(cursor_shown)
            hud = None
            if show_hud:
                figures = show.hud_figures()
                hud = Hud(
                    fps=show.fps or 0.0,
                    frame_ms=max(frame_ms) if frame_ms else 0.0,
                    relay=str(figures["relay"]),
                    latency_ms=figures["latency_ms"],
                    callers=sum(1 for t in scene.tracks if t.caller) + scene.line_length,
                    midi_port=figures["midi_port"],
                    extra={"sound": _sound_state(sound, muted)}
                    | ({"lights": str(figures["lights"])} if figures.get("lights") else {})
                    | {"phone": str(figures["phone"])},
                )
            message = keyboard.quit_prompt(now) or ("sound muted (M)" if muted else None)
            drawn = time.monotonic()
            calibrator.resize(display.size)
            display.draw(
                scene,
                hud=hud,
                test_pattern=show_test,
                help_lines=HELP_LINES if show_help else None,
                message=message,
                calibration=calibrator.overlay() if calibrator.active else None,
            )
            frame_ms.append((time.monotonic() - drawn) * 1000)
            if display.street_problem and not street_said:
                street_said = True
                log.warning('info = "window": %s; the info is not shown', display.street_problem)
            frames += 1
            if now - fps_since >= 1.0:  # frames a second, for the HUD and the console
                show.fps = frames / (now - fps_since)
                frames, fps_since = 0, now
            # Pace to FPS with a wait that a signal can cut short.
            last += 1 / FPS
            wait = last - time.monotonic()
            if wait > 0:
                stop.wait(wait)
            else:
                last = time.monotonic()
        if display is not None and options.screenshot:
            display.draw(show.scene)
            display.screenshot(options.screenshot)
            print(f"dialjam billboard: screenshot saved to {options.screenshot}")
    finally:
        if display is not None:
            display.close()
