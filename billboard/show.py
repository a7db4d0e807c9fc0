"""One night's show: the wiring of the engine, its thread, the relay and the outputs.

Three threads, each with one job:
- the main thread draws (pygame wants it) or, headless, just waits;
- the asyncio thread runs the embedded relay (unless a remote one is used) and the
  relay link;
- the scheduler thread owns the engine and plays notes on time;

and, with `[billboard.lights]`, a fourth sends the scene to DMX fixtures
(billboard/lights/sender.py); unless `phone_music` is off, another renders the phone
mixes every 20 ms (billboard/phone_out.py), handed to the asyncio thread's phone audio
link (billboard/phone_link.py) for the relay's voice gateways.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from relay.app import create_app, listen
from relay.backoff import backoff_delay
from relay.config import (
    AriConfig,
    RelayConfig,
    SipConfig,
    TwilioConfig,
    fill_tokens,
    pseudonym_key,
)
from relay.contract.scene import Banner
from relay.reach import Reach, probe_in_background, reach_key

from .config import BillboardConfig
from .door import Door
from .engine import Engine, Scene
from .engine.events import EngineUpdate, InputEvent, Leave, Notice
from .eventlog import EventLog, read_events
from .news import News
from .outputs import ClockSink, NoteSink, follow_key, follow_tempo
from .phone_link import PhoneAudioLink, phone_audio_url
from .phone_out import PhoneOut
from .relay_link import RelayLink
from .scheduler import Scheduler

if TYPE_CHECKING:  # imported when the lights open: the protocols' libraries load with them
    from .lights.sender import LightsOut
    from .phone_mix import PhoneMixer

log = logging.getLogger("billboard")

STATE_MIN_INTERVAL_S = 0.1  # `state` at most 10 times a second…
# …and every second when nothing changes: a console calls a billboard silent for 3 s
# "silent", a wall mirror after 2 s, so a quiet building is never taken for a gone one.
STATE_KEEPALIVE_S = 1.0
LINK_RESTART_MAX_S = 15.0


@dataclasses.dataclass
class Options:
    """What the command line adds to the config file for this run."""

    headless: bool = False
    duration: float | None = None
    record: Path | None = None
    log_events: Path | None = None
    replay: Path | None = None
    screenshot: Path | None = None
    config: Path | None = None  # the installation's file: the calibration mode saves there
    sounds_dir: Path = Path(__file__).resolve().parent.parent / "sounds"


class Show:
    def __init__(
        self,
        config: BillboardConfig,
        relay_config: RelayConfig,
        options: Options,
        *,
        sinks: Sequence[NoteSink] = (),
        midi: ClockSink | None = None,
        twilio: TwilioConfig | None = None,
        ari: AriConfig | None = None,
        sip: SipConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.twilio = twilio  # the embedded relay mounts the gateway, as python -m relay does
        self.ari = ari  # and runs the ARI client
        self.sip = sip  # and answers the SIP trunk
        self.options = options
        self.clock = clock
        self.start = clock()
        relay_config, made_up = fill_tokens(relay_config)
        if made_up:
            log.info(
                "made up for this show only: %s (relay.config.fill_tokens)", ", ".join(made_up)
            )
        self.relay_config = relay_config
        self.channel = config.channel or relay_config.channel
        self.door = Door(pseudonym_key(relay_config))
        self.engine = Engine(config.engine_config(), start=self.start)
        self.eventlog = EventLog(options.log_events, self.start) if options.log_events else None
        self.news = News(self.engine.config.tracks)  # what each keypad hears
        self.phone: PhoneOut | None = None  # the music down the phone line
        self.phone_link: PhoneAudioLink | None = None
        # An embedded relay with phone music off would only answer the link with a 404.
        if config.phone_music and (config.relay or relay_config.phone_music):
            self.phone = PhoneOut(
                self._phone_mixer,
                self._send_phone,
                self._holders,
                clock=clock,
                wanted=lambda: self.phone_link is not None and self.phone_link.connected,
            )
            sinks = [*sinks, self.phone]
        self.scheduler = Scheduler(
            self.engine,
            sinks,
            clock=clock,
            midi_clock=midi,
            on_updates=self._updates,
            on_scene=self._scene,
            on_event=self._on_event,
        )
        self.midi = midi
        self.link: RelayLink | None = None
        self.relay_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._async_error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._link_task: asyncio.Task[None] | None = None
        self._phone_task: asyncio.Task[None] | None = None
        self._last_state = 0.0
        self._last_signature: object = None
        self._last_lit = False
        self._banner: Banner | None = None
        self._banner_port: int | None = None
        self.fps: float | None = None  # the display's, set by the frontend
        self.lights: LightsOut | None = None

    # -- start and stop --

    def start_background(self) -> None:
        """Start the relay (embedded or remote link) and the engine thread."""
        self._async_thread = threading.Thread(target=self._async_main, name="dialjam-relay")
        self._async_thread.daemon = True
        self._async_thread.start()
        self._ready.wait(15)
        if self._async_error is not None:
            raise self._async_error
        if self.phone is not None:
            self.phone.start()  # before the engine: its first notes find it taking them
        self.scheduler.start()
        if self.config.lights.enabled:
            self._start_lights()
        # A full garbage collection walks every object of the process, all of pygame's,
        # numpy's and aiohttp's modules with ours (60-100 ms on a small machine), and
        # holds the relay and the engine meanwhile: a caller's press waits it out. What
        # start-up made lives all night, so it is left out of every later collection.
        gc.collect()
        gc.freeze()
        if self.options.replay:
            threading.Thread(target=self._replay, name="dialjam-replay", daemon=True).start()

    def _start_lights(self) -> None:
        from .lights.patch import Patch
        from .lights.sender import LightsOut

        lights = self.config.lights
        patch = Patch.of(lights, self.engine.config.facade)
        self.lights = LightsOut(lights, patch, lambda: self.scheduler.scene, clock=self.clock)
        self.lights.start()

    def stop(self) -> None:
        self.scheduler.stop()
        if self.phone is not None:
            self.phone.stop()
        if self.lights is not None:
            self.lights.stop()  # after the engine: the fixtures' last frame is dark
        if self.eventlog:
            self.eventlog.close()
        loop = self._loop
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._async_stop(), loop)
            try:
                future.result(10)
            except Exception:
                log.exception("the relay did not stop cleanly")
            loop.call_soon_threadsafe(loop.stop)
        if self._async_thread is not None:
            self._async_thread.join(10)

    # -- the asyncio thread --

    def _async_main(self) -> None:
        from relay.runtime import event_loop_factory

        loop = self._loop = event_loop_factory()()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._async_start())
        except BaseException as exc:  # reported to the main thread, which says why
            self._async_error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _async_start(self) -> None:
        cfg = self.config
        token = cfg.token or self.relay_config.billboard_token
        if cfg.relay:
            url = cfg.relay
        else:
            app = create_app(self.relay_config, self.twilio, self.ari, self.sip)
            host, port = self.relay_config.host, self.relay_config.port
            runner = self._runner = await listen(app, host, port, shutdown_timeout=3)
            self.relay_port = runner.addresses[0][1]
            url = f"ws://127.0.0.1:{self.relay_port}/ws"
        self.link = RelayLink(url, self.channel, token, self._on_data, self._on_command)
        loop = asyncio.get_running_loop()
        self._link_task = loop.create_task(self._supervise(self.link))
        if self.phone is not None:
            self.phone_link = PhoneAudioLink(phone_audio_url(url), token)
            self._phone_task = loop.create_task(self._supervise(self.phone_link))

    def probe_public(self, public_url: str, say: Callable[[Reach], None]) -> None:
        """Check on the relay's thread that `public_url` leads to this installation's
        relay (relay/reach.py: bounded, never raises); `say` hears the answer there."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        key = reach_key(self.config.token or self.relay_config.billboard_token)
        asyncio.run_coroutine_threadsafe(probe_in_background(public_url, key, say), loop)

    async def _supervise(self, link: RelayLink | PhoneAudioLink) -> None:
        """Keep a link to the relay running: `run` only returns or raises through a bug
        of ours, and then it is shown and restarted with backoff, never left dead."""
        failures = 0
        while True:
            try:
                await link.run()
                log.error("the %s stopped by itself; restarting it", _name(link))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the %s failed; restarting it", _name(link))
            link.status = "offline"
            failures += 1
            await asyncio.sleep(backoff_delay(failures, 0.5, LINK_RESTART_MAX_S, random.random))

    async def _async_stop(self) -> None:
        for task in (self._link_task, self._phone_task):
            if task is not None:
                task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    def _on_data(self, data: dict[str, Any]) -> None:
        for event in self.door.admit(data):
            self.scheduler.submit(event)

    def _on_command(self, data: dict[str, Any]) -> None:
        for event in self.door.admit_command(data):
            self.scheduler.submit(event)

    # -- from the engine thread --

    def _on_event(self, event: InputEvent, at: float) -> None:
        if self.eventlog is not None:
            self.eventlog.write(event, at)
        if self.phone is not None and isinstance(event, Leave):
            self.phone.forget(event.caller)
        # A recording keeps the operator's tempo changes in its tempo map, and writes a
        # key signature for each change of key or scale.
        follow_tempo(self.scheduler.sinks, event, at)
        follow_key(self.scheduler.sinks, event, at)

    def _updates(self, updates: list[EngineUpdate]) -> None:
        if self.phone is not None:
            self.phone.updates(updates)  # the cues: a track, the front of the line, lost
        loop, link = self._loop, self.link
        if loop is None or link is None:
            return
        for update in updates:
            if not isinstance(update, Notice):  # a notice is one caller's, on :callers only
                loop.call_soon_threadsafe(link.publish_update, update.to_data())
        for news in self.news.updates(updates):
            loop.call_soon_threadsafe(link.publish_news, news)

    def _scene(self, scene: Scene) -> None:
        loop, link = self._loop, self.link
        if loop is None or link is None:
            return
        for news in self.news.scene(scene):
            loop.call_soon_threadsafe(link.publish_news, news)
        now = scene.time
        signature = scene.signature()
        lit = bool(scene.lit)
        changed = signature != self._last_signature or lit or self._last_lit
        due = now - self._last_state >= (STATE_MIN_INTERVAL_S if changed else STATE_KEEPALIVE_S)
        if not due:
            return
        self._last_state, self._last_signature, self._last_lit = now, signature, lit
        state = scene.to_state()
        state["hud"] = self.hud_figures()
        state["banner"] = self.banner().to_data()
        loop.call_soon_threadsafe(link.publish_state, state)

    def banner(self) -> Banner:
        """What the facade invites with, for a wall mirror to show the same: the number
        and the keypad's address as on the screen (the port the relay really has)."""
        if self._banner is None or self._banner_port != self.relay_port:
            port = self.relay_port or self.relay_config.port
            relay = dataclasses.replace(self.relay_config, port=port)
            self._banner = Banner(self.config.phone.strip() or None, relay.keypad_url())
            self._banner_port = self.relay_port
        return self._banner

    def hud_figures(self) -> dict[str, Any]:
        lateness = list(self.scheduler.timing.lateness)[-200:]
        presses = list(self.scheduler.timing.press_latency)[-50:]
        return {
            "fps": round(self.fps, 1) if self.fps is not None else None,
            "midi_port": self.midi.name if self.midi is not None else None,
            "latency_ms": round(1000 * max(presses), 2) if presses else None,
            "late_ms": round(1000 * max(lateness), 2) if lateness else None,
            "relay": self.link.status if self.link else "starting",
            "lights": self.lights.status if self.lights else None,
            "phone": self.phone_status(),
        }

    def phone_status(self) -> str:
        """The music down the phone line, in a few words, for the HUD and the console."""
        if self.phone is None:
            return "off"
        link = self.phone_link.status if self.phone_link is not None else "starting"
        if self.phone.status != "rendering":
            return f"{self.phone.status}; link {link}"
        cpu, late = self.phone.cpu_ms_mean(), self.phone.late_ms_max()
        if cpu is None or late is None:
            return link
        return f"{link}; {cpu:.2f} ms CPU a frame, out ≤ {late:.0f} ms after its end"

    def phone_summary(self) -> str | None:
        """The phone music's night, for the stop summary (None: it was off)."""
        if self.phone is None:
            return None
        link = self.phone_link
        sent, dropped = (link.sent, link.dropped) if link is not None else (0, 0)
        return (
            f"phone music: {sent:,} frames sent to the relay ({dropped:,} dropped while it "
            f"was away or busy), {self.phone.skipped:,} skipped after stalls"
        )

    # -- the phone mixes (phone thread) --

    def _phone_mixer(self) -> PhoneMixer:
        from .phone_mix import PhoneMixer
        from .samples import load_sample_sets

        sets = load_sample_sets(self.options.sounds_dir)
        return PhoneMixer(sets, self.engine.config.tracks)

    def _send_phone(self, bundle: bytes) -> None:
        loop, link = self._loop, self.phone_link
        if loop is not None and link is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the show is stopping
                loop.call_soon_threadsafe(link.offer, bundle)

    def _holders(self) -> dict[str, str]:
        return {t.caller: t.name for t in self.scheduler.scene.tracks if t.caller is not None}

    # -- replay --

    def _replay(self) -> None:
        assert self.options.replay is not None
        for t, event in read_events(self.options.replay):
            at = self.start + t
            # Hand each event over shortly before its time: the scheduler applies it
            # at `at` exactly, so the replay plays the same notes.
            delay = at - 0.2 - self.clock()
            if delay > 0:
                time.sleep(delay)
            self.scheduler.submit(event, at=at)

    # -- for the main thread --

    def submit(self, event: InputEvent) -> None:
        self.scheduler.submit(event)

    @property
    def scene(self) -> Scene:
        return self.scheduler.scene


def _name(link: RelayLink | PhoneAudioLink) -> str:
    return "relay link" if isinstance(link, RelayLink) else "phone audio link"
