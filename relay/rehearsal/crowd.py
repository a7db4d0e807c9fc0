"""The rehearsal crowd: N simulated callers play through one ingress path of a running
relay while a subscriber on the channel checks that every press arrives.

    python -m relay.rehearsal --callers 50 --rate 2 --via ws|twilio|twilio-audio|ari|sip

Before doors open the operator runs it against the installation's relay (the one the
billboard shows): the billboard plays the crowd, and the report says whether every key
press of every caller arrived once, in order, and how late. It is also the end-to-end
load test of the relay.

The paths, each speaking exactly what the real thing sends:

- ``ws``: browser keypads (web/js/keypad.js): a WebSocket on /ws, ``subscriber`` to
  CHANNEL:state (v2), then ``publisher`` frames with ``join`` / ``digit`` / ``leave``.
  The caller id is the keypad's own random pseudonym, so the crowd knows it.
- ``twilio``: phones through Twilio Media Streams: the signed voice webhook, its TwiML
  parsed, the stream opened (signed over the TwiML's wss:// URL) and fed ``connected``,
  ``start``, 20 ms ``media`` frames of silence in real time, ``dtmf`` messages and
  ``stop`` (https://www.twilio.com/docs/voice/media-streams/websocket-messages). The
  caller id is the TwiML's ``<Parameter name="caller">``.
- ``twilio-audio``: the same, but each press is a DTMF tone inside the audio (for the
  relay's in-band detector) and no ``dtmf`` message is sent.
- ``ari``: an Asterisk stand-in (relay.rehearsal.fake_ari) listens; the relay's ARI
  client connects to it, and each caller is a StasisStart, ChannelDtmfReceived per
  press and a hang-up. The gateway names the caller with a keyed pseudonym of the
  number that the crowd cannot (and must not) compute; call starts are serialised
  instead, so the first unclaimed ``join`` from an ARI caller on the channel after a
  StasisStart names that call's caller.

The check: a v2 subscriber (as a billboard is, no token) counts, per caller, the
``digit`` events against the presses sent, in order: a press never seen is lost, one
seen twice duplicated, one seen after a later press out of order; latency is from the
moment the press left the crowd to the moment the subscriber read it. Exit status 0
when every caller got through and every press arrived once and in order, 1 otherwise,
2 for a bad option.

How the callers press is the plan's style (``--style``): ``human`` by default, phrases
and pauses at each caller's own pace, favourite keys and motifs; ``steady``, one press
every 1/rate seconds, keys uniform. Both send floor(duration × rate) presses a caller
(the human style a few per cent fewer at rates near the path's limit).

The package, by job: ``plan`` (the options and who presses what, pure), ``callers``
(one coroutine per caller, per path), ``checker`` (the arrival check, on the
contract's v2 subscriber), ``scoring`` (sent against seen), ``report``, ``cli`` (the
command line); this module runs them together (`run_crowd`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from typing import Final

import aiohttp

from .callers import CONNECT_TIMEOUT_S, CallerFailed, Callers, make_fake_ari
from .checker import ArrivalChecker
from .plan import CallerPlan, CrowdOptions, UsageError, plan_crowd, validate
from .report import CrowdReport
from .scoring import ArrivalTally
from .sip_phone import SipPhones

PROGRESS_EVERY_S: Final = 5.0


async def run_crowd(
    options: CrowdOptions,
    say: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    *,
    plans: Sequence[CallerPlan] | None = None,
    numbers: Sequence[str] | None = None,
) -> CrowdReport:
    """Play the crowd against the relay and return the report. `say` gets progress
    lines (None: quiet); setting `stop` ends every call early (the report says so).
    Raises `UsageError` for bad options; a relay that cannot be reached is a report
    whose callers failed, never an exception.

    By default the callers follow `plan_crowd` in `options.style`; a longer rehearsal
    (bench/soak.py runs one crowd per path at once) may give its own `plans` (one per
    caller, indexed 0…callers-1: callers coming and going, phrases and pauses; the
    style is then theirs) and the phone `numbers` its callers dial from (so that crowds
    on several paths use distinct numbers)."""
    validate(options)
    say = say or (lambda line: None)
    stop = stop or asyncio.Event()
    seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
    style = options.style if plans is None else ""  # given plans have their own style
    if plans is None:
        plans, ramp = plan_crowd(options, seed), options.ramp
    elif sorted(p.index for p in plans) == list(range(options.callers)):
        ramp = max(p.start for p in plans)
    else:
        raise UsageError(f"plans must number the {options.callers} callers 0…{options.callers - 1}")
    if numbers is not None and len(numbers) < options.callers:
        raise UsageError(f"{len(numbers)} numbers for {options.callers} callers")
    tally = ArrivalTally(claim_source=options.via if options.via in ("ari", "sip") else None)
    loop = asyncio.get_running_loop()
    began = loop.time()
    connector = aiohttp.TCPConnector(limit=0)  # every caller is its own connection
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=None)
    callers: Callers | None = None

    def report() -> CrowdReport:
        r = tally.report(options, seed, plans)
        r.elapsed_s = loop.time() - began
        r.style = style
        r.interrupted = stop.is_set()
        if callers is not None and options.via.startswith("twilio"):
            r.media_lag_max_ms = callers.media_lag * 1000
            r.music_frames, r.music_clears = callers.music_frames, callers.music_clears
        return r

    def fail_all(kind: str) -> CrowdReport:
        for plan in plans:
            tally.fail(plan.index, kind)
        return report()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        checker: ArrivalChecker | None = None
        if options.check:
            where = options.check_relay or options.relay
            checker = ArrivalChecker(where, options.channel, session)
            try:
                await checker.start(tally)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                say(f"cannot subscribe to {options.channel} on {where}: {exc}")
                return fail_all("relay unreachable")
            except CallerFailed as exc:
                say(exc.kind)
                return fail_all("subscribe refused")
        callers = Callers(options, session, tally, stop, seed, say, numbers)
        try:
            if options.via == "ari":
                ready = await start_ari(callers, say)
                if not ready:
                    return fail_all("no ARI client")
            if options.via == "sip":
                callers.sip = SipPhones(options.sip_target)
                await callers.sip.start()
            callers.t0 = callers.now()
            presses = [len(p.presses) for p in plans]
            each = (
                f"{presses[0]} presses each"
                if min(presses) == max(presses)
                else f"{sum(presses)} presses in all"
            )
            say(
                f"{options.callers} callers via {options.via} → {options.relay}, channel "
                f"{options.channel}: {each} over {options.duration:g} s, starts spread "
                f"over {ramp:g} s"
            )
            calls = [asyncio.create_task(callers.play(plan)) for plan in plans]
            progress = asyncio.create_task(show_progress(callers, say))
            await asyncio.gather(*calls)
            progress.cancel()
            if checker is not None:
                # The last presses and leaves are still on their way; stopped, wait less.
                drain = min(options.drain, 1.0) if stop.is_set() else options.drain
                deadline = loop.time() + drain
                while not tally.settled() and loop.time() < deadline:
                    await asyncio.sleep(0.02)
        finally:
            if checker is not None:
                await checker.close()
            if callers.ari is not None:
                await callers.ari.close()
            if callers.sip is not None:
                callers.sip.close()
    return report()


async def start_ari(callers: Callers, say: Callable[[str], None]) -> bool:
    """Start the Asterisk stand-in and wait for the relay's ARI client to connect."""
    host, port = callers.options.ari_listen
    ari = make_fake_ari(callers.options)
    try:
        base = await ari.start(host, port)
    except OSError as exc:
        say(f"cannot listen on {host}:{port} for the relay's ARI client: {exc.strerror}")
        return False
    callers.ari = ari
    say(
        f"point the relay's [ari] url at {base} (app {callers.options.ari_app}, user "
        f"{callers.options.ari_username or '(none)'}) and restart it (a relay already "
        "pointed there connects by itself)"
    )
    wait = callers.options.ari_wait
    say(f"waiting up to {wait:g} s for the relay's ARI client to connect …")
    try:
        await ari.wait_client(wait)
    except TimeoutError:
        say(f"no ARI client connected to {base} within {wait:g} s: is the relay's [ari] url it?")
        return False
    say("the relay's ARI client is connected")
    return True


async def show_progress(callers: Callers, say: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        sent, seen = callers.tally.counts()
        failed = len(callers.tally.failed)
        checked = f", {seen} seen" if callers.options.check else ""
        say(
            f"  {callers.now() - callers.t0:4.0f} s: {callers.in_call} in a call, {failed} failed, "
            f"{sent} presses sent{checked}"
        )
