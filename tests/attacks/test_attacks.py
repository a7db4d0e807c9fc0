"""The attacks of the relay's threat list, replayed against a real relay and a
headless billboard while a keypad caller and a Twilio caller play and the operator
changes the tempo. Each test runs one class of attack (tests/attacks/attacker.py) and
checks what every attack must leave standing (`Outcome.check_the_show_went_on`: no
press lost, p99 press → engine ≤ 50 ms (250 ms on a machine other work keeps busy),
the operator obeyed, RSS < 300 MB, a short log, no phone number anywhere), then what
this attack must show: its refusals counted in /metrics and the damage it did not do."""

from __future__ import annotations

import pytest

from billboard.engine.events import Digit, Join

from .stage import CHANNEL, Outcome, Stage, events_in

# Each attack measures real time (p99 press → engine, the grid's steps and the states
# a second while it lasts): `timing` tests.
pytestmark = pytest.mark.timing

# Log lines an attack may cost: one per reason and address a minute, within the
# relay's budget (relay/ratelimit.py LogOnce), plus the Twilio caller's call line.
LOG_LINES = 25


def report(outcome: Outcome) -> None:
    """The attack's figures, for `pytest -s` and the report."""
    print(f"\n{outcome.figures()}")


async def test_poison_frames_never_reach_the_billboard(stage: Stage) -> None:
    """Bad frames from strangers (who flood and come back), from a keypad with a
    session and, data-level, from the publisher token: refused or read into their
    canonical form at the relay's door; the billboard's link never sees one."""
    outcome = await stage.play(["poison"])
    report(outcome)
    outcome.check_the_show_went_on(LOG_LINES)
    outcome.attack_reached(
        outcome.books("poison anonymous")["frames"] >= 10_000
        and outcome.books("poison publisher")["frames"] >= 10_000,
        "10,000 frames from strangers and 10,000 from the publisher token",
    )
    assert outcome.books("poison anonymous").get("closed 1008", 0) >= 1  # flooding
    for code in (
        "unauthorised",
        "bad_json",
        "not_object",
        "bad_event",
        "bad_caller",
        "bad_digit",
        "wrong_channel",
        "binary",
        "too_large",
        "rate_limited",
    ):
        assert outcome.counter(f"errors{{{code}}}") > 0, (code, outcome.counters())
    assert outcome.counter("refused{unmasked}") > 0
    assert outcome.logged("refused a frame from") and outcome.logged("without a mask")
    # What reached the billboard was events it could read, every one.
    assert (outcome.link_bad_frames, outcome.door_refused) == (0, 0)


async def test_strangers_neither_command_nor_play_as_someone_else(stage: Stage) -> None:
    """Commands from anyone but the operator (on the public channel, on :control
    with no or a guessed token, a text/plain POST from a page elsewhere, a keypad, the
    publisher token) and impersonation of the callers it hears on the public channel
    (its own session, forged sessions, anonymous frames, HTTP, unsigned Twilio)."""
    outcome = await stage.play(["forge"])
    report(outcome)
    outcome.check_the_show_went_on(LOG_LINES)
    # The attacker heard both legitimate callers, and got nothing through for them.
    outcome.attack_reached(
        outcome.books("forge listen")["victims found"] >= 2
        and outcome.books("forge ws")["forged commands"] >= 1000,
        "both callers heard, and 1,000 forged commands",
    )
    for kind in ("forge ws", "forge http", "impersonate"):
        assert not {"ack", "http 200"} & outcome.books(kind).keys(), outcome.books(kind)
    assert outcome.books("forge twilio").get("stream opened", 0) == 0
    for counter in (
        "errors{unauthorised}",
        "errors{wrong_channel}",
        "errors{bad_session}",
        "errors{twilio_bad_signature}",
        "refused{bad_origin}",
    ):
        assert outcome.counter(counter) > 0, (counter, outcome.counters())
    assert outcome.logged("from a page elsewhere") and outcome.logged("X-Twilio-Signature")
    # The engine stayed in the operator's key and scale, with nobody muted.
    assert (outcome.state["key"], outcome.state["scale"]) == ("C", "major")
    assert not any(track["muted"] for track in outcome.state["tracks"])


async def test_a_10000_join_line_flood_is_capped_and_the_link_stays_up(stage: Stage) -> None:
    """A rogue IVR with the publisher token: a burst of 2,000 joins is read at its
    publisher_rate (held back, not queued before the callers' presses), then 10,000
    more reach the engine, which keeps line_max of them waiting; the state stays small
    and the billboard's link connected."""
    outcome = await stage.play(["line-flood"])
    report(outcome)
    outcome.check_the_show_went_on(LOG_LINES)
    flood = [
        a
        for a in outcome.applied
        if isinstance(a.event, Join) and a.event.caller.startswith("c-fl")
    ]
    outcome.attack_reached(len(flood) >= 10_000, "10,000 joins reached the engine")
    line_max = stage.show.config.line_max
    # The line only shrinks as tracks free up and take its front: the two callers'
    # tracks when they leave, and on a slow machine (a run past idle_s) those of the
    # flood's first joiners, who never press. Never by more than one per track.
    tracks = len(stage.show.config.tracks)
    assert outcome.state["line_length"] >= line_max - tracks
    assert max(state["line_length"] for state in outcome.states()) == line_max
    assert outcome.metric("dialjam_relay_throttled") > 0  # the burst, held back
    assert outcome.logged("over publisher_rate")


@pytest.mark.relay(connections_per_address=300, header_timeout_s=2.0)
async def test_one_address_cannot_take_every_socket(stage: Stage) -> None:
    """One address opens 450 idle sockets (its cap is 300, with room for 32 token
    holders), another 1,100 slowloris sockets (a header byte a second, a 2 s header
    deadline): both are refused past their caps and cut at the deadline, and
    everyone else plays."""
    outcome = await stage.play(
        ["fd-flood", "slowloris"], "--source", "127.0.0.2", "--slow-source", "127.0.0.3"
    )
    report(outcome)
    outcome.check_the_show_went_on(LOG_LINES)
    fd, slow = outcome.books("fd flood"), outcome.books("slowloris")
    outcome.attack_reached(
        # past the cap at once: a starved attacker that opens them more slowly than the
        # 2 s deadline closes them never reaches it
        fd["most open at once"] > 300
        and slow["sockets opened"] >= 1100
        and slow.get("header bytes", 0) >= 1100,  # each trickled at least once
        "450 idle sockets, over 300 open at once, and 1,100 slowloris sockets trickling",
    )
    assert fd.get("answered 503", 0) > 0 and slow.get("answered 408", 0) > 0
    assert outcome.counter("refused{too_many_from_address}") > 0
    assert outcome.counter("refused{header_timeout}") > 0
    assert max(outcome.samples.busiest_address) <= 300 + 32
    assert outcome.logged("refused 127.0.0.2") and outcome.logged("refused 127.0.0.3")


@pytest.mark.relay(max_channels=1000, history_total_bytes=32 << 20)
async def test_history_floods_and_channel_squatters_are_bounded(stage: Stage) -> None:
    """Token holders publish frames as big as a token allows to many channels, and
    open channels until the relay holds max_channels; strangers try thousands of new
    channels and the installation's :control: history stays within its bound, no
    stranger opens a channel, and the installation's channels work throughout."""
    outcome = await stage.play(["squat", "history-flood"])
    report(outcome)
    outcome.check_the_show_went_on(LOG_LINES)
    anonymous = outcome.books("squat anonymous")
    outcome.attack_reached(
        anonymous["channel attempts"] >= 2000
        and outcome.counter("history_dropped{total}") * (60 << 10) >= 32 << 20,
        "2,000 strangers' channels, and history past its 32 MiB bound",
    )
    # History filled and shed more than its bound (each event as big as a token
    # allows, held back to publisher_rate) and never held more.
    assert outcome.counter("history_dropped{total}") * (60 << 10) >= 32 << 20
    assert outcome.metric("dialjam_relay_throttled") > 0
    assert outcome.logged("history passed")
    assert max(outcome.samples.history_bytes) <= 32 << 20
    assert not {"subscribed", "ack"} & anonymous.keys()
    assert outcome.counter("errors{unknown_channel}") > 0
    assert outcome.counter("errors{too_many_channels}") > 0
    pinned = len(stage.relay.hub.pinned)
    assert max(outcome.samples.channels) <= 1000 + pinned
    assert outcome.logged("too_many_channels") and outcome.logged("unknown_channel")


async def test_phone_numbers_never_leave_the_relays_door(stage: Stage) -> None:
    """Numbers in the seed form (caller_id, ani, as text and as an integer), as a
    caller id, in a nickname, a display, a source, a reason; through the publisher
    token (WebSocket, URL token and HTTP), a keypad's session and anonymously: none
    reaches a subscriber of the public channel, the state, the event log or the log;
    the seed callers play under pseudonyms."""
    outcome = await stage.play(["seed-leak"])
    report(outcome)
    outcome.check_the_show_went_on(LOG_LINES)  # checks the numbers' absence too
    outcome.attack_reached(len(outcome.attacker["numbers"]) >= 40, "40 phone numbers")
    seeds = [a.event for a in outcome.applied if isinstance(a.event, Digit)]
    assert sum(1 for d in seeds if d.source == "seed") >= 100
    public = [data for channel, data in events_in(outcome.frames) if channel == CHANNEL]
    assert sum(1 for data in public if "caller_id" in data) >= 100
    assert outcome.counter("errors{unauthorised}") > 0  # the anonymous ones
    assert outcome.logged("unauthorised")
