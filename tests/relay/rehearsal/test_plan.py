"""The rehearsal crowd's plan (relay.rehearsal.plan), pure: the steady style exactly as
it always was, and what the human style promises (the path's limits, the presses a
caller makes, phrases and pauses, favourite keys, motifs), each over many seeds."""

from __future__ import annotations

import collections
import math
import random
import statistics

import pytest

from relay.rehearsal.cli import parse_options
from relay.rehearsal.plan import (
    MAX_AUDIO_RATE,
    MAX_RATE,
    VIAS,
    CallerPlan,
    CrowdOptions,
    Press,
    UsageError,
    plan_crowd,
    validate,
)
from relay.rehearsal.report import CrowdReport

# Two presses a second for a minute: five callers a seed, forty seeds.
MINUTE = CrowdOptions(callers=5, rate=2.0, duration=60.0)
SEEDS = range(40)


def human_callers(options: CrowdOptions = MINUTE) -> list[CallerPlan]:
    return [caller for seed in SEEDS for caller in plan_crowd(options, seed)]


def gaps(caller: CallerPlan) -> list[float]:
    return [b.at - a.at for a, b in zip(caller.presses, caller.presses[1:], strict=False)]


def phrases(caller: CallerPlan, rate: float) -> list[list[str]]:
    """The caller's keys, cut where a gap is longer than 0.9 / rate (a pause)."""
    out = [[caller.presses[0].key]]
    for gap, press in zip(gaps(caller), caller.presses[1:], strict=True):
        if gap > 0.9 / rate:
            out.append([])
        out[-1].append(press.key)
    return out


# -- the styles --


def test_the_steady_style_presses_like_a_metronome_exactly_as_it_always_did() -> None:
    options = CrowdOptions(callers=2, rate=2.0, duration=2.0, ramp=1.0, style="steady")
    assert plan_crowd(options, seed=7) == [
        CallerPlan(
            0, 0.0, (Press(0.25, "5"), Press(0.75, "2"), Press(1.25, "6"), Press(1.75, "*")), 2.0
        ),
        CallerPlan(
            1, 0.5, (Press(0.25, "0"), Press(0.75, "1"), Press(1.25, "8"), Press(1.75, "1")), 2.0
        ),
    ]


def test_callers_play_human_unless_asked_to_be_steady_and_no_other_style() -> None:
    assert CrowdOptions().style == "human"
    assert parse_options([], env={})[0].style == "human"
    assert parse_options(["--style", "steady"], env={})[0].style == "steady"
    with pytest.raises(UsageError, match=r"^--style must be one of human, steady, not 'swing'$"):
        validate(CrowdOptions(style="swing"))


def test_the_report_says_which_style_was_played() -> None:
    report = CrowdReport(
        via="ws", relay="http://x", channel="dialjam", seed=3, checked=True, callers=1
    )
    assert "(plans given, seed 3" in report.render()
    report.style = "human"
    assert "channel dialjam (human style, seed 3, " in report.render()


def test_a_human_plan_is_the_same_for_the_same_options_and_seed() -> None:
    options = CrowdOptions(callers=4, rate=2.0, duration=20.0, ramp=2.0)
    plan = plan_crowd(options, seed=42)
    assert plan == plan_crowd(options, seed=42)
    assert plan != plan_crowd(options, seed=43)
    assert [p.start for p in plan] == [0.0, 0.5, 1.0, 1.5]  # the ramp, as steady
    assert {p.hang_up for p in plan} == {20.0}
    assert len({p.presses for p in plan}) == 4  # every caller its own


# -- the human style's limits --


def random_options(rng: random.Random) -> CrowdOptions:
    """Any path, any relay rate, a rate anywhere up to (and at) the path's limit, a
    duration from half a second to a minute."""
    via = rng.choice(VIAS)
    relay_rate = rng.choice((0.0, 5.0, 10.0, 20.0, 40.0))
    limit = MAX_AUDIO_RATE if via == "twilio-audio" else MAX_RATE
    if via == "ws" and relay_rate > 0:
        limit = min(limit, relay_rate * 0.999)  # validate: below the relay's rate
    rate = rng.choice((limit, rng.uniform(0.05, limit), rng.uniform(0.8 * limit, limit)))
    duration = rng.choice((rng.uniform(20.0, 60.0), rng.uniform(0.5, 20.0)))
    return CrowdOptions(callers=3, rate=rate, duration=duration, via=via, relay_rate=relay_rate)


def test_a_human_caller_never_presses_faster_than_its_path_allows() -> None:
    # Never closer than 1 / the path's limit, and on a keypad strictly slower than
    # the relay's frames a second: never faster than a steady plan could legally go.
    checked = 0
    for seed in range(200):
        options = random_options(random.Random(seed))
        if math.floor(options.duration * options.rate) < 1:
            continue
        validate(options)
        limit = MAX_AUDIO_RATE if options.via == "twilio-audio" else MAX_RATE
        for caller in plan_crowd(options, seed):
            assert caller.presses, options
            assert caller.presses[0].at > 0 and caller.presses[-1].at < options.duration
            for gap in gaps(caller):
                assert gap >= 1 / limit, options
                if options.via == "ws" and options.relay_rate > 0:
                    assert gap > 1 / options.relay_rate, options
        checked += 1
    assert checked > 150


def test_a_human_caller_presses_as_often_as_a_steady_one_give_or_take_5_percent() -> None:
    # floor(duration × rate) presses, as the steady plan: the human plan only moves them
    # in time. Near the path's limit a few are pushed past the hang-up and dropped:
    # over 20 s or more, never more than 5 % (the bound; 35 % would still be human).
    for seed in range(200):
        options = random_options(random.Random(seed))
        steady = math.floor(options.duration * options.rate)
        if steady < 1:
            continue
        for caller in plan_crowd(options, seed):
            assert 1 <= len(caller.presses) <= steady, options
            if options.duration >= 20:
                assert len(caller.presses) >= 0.95 * steady, options


@pytest.mark.parametrize("rate", [0.2, 1.0, 2.0, 5.0, 10.0])
def test_a_human_caller_keeps_to_the_steady_schedule_within_a_phrase(rate: float) -> None:
    # Its long-run rate is the rate asked, pauses included, and it is never more than
    # one phrase (12 presses) ahead of the steady plan nor 12 behind: a token bucket
    # that lets the steady crowd through lets it through with a burst of 12.
    options = CrowdOptions(callers=5, rate=rate, duration=60.0)
    for caller in human_callers(options):
        for k, press in enumerate(caller.presses):
            steady_by_then = min(math.floor(press.at * rate + 0.5), math.floor(60.0 * rate))
            assert -12 <= (k + 1) - steady_by_then <= 12
        mean_rate = len(caller.presses) / options.duration
        assert mean_rate == pytest.approx(rate, rel=0.02)


def test_a_human_caller_presses_first_within_a_second_of_getting_through() -> None:
    for rate in (0.1, 0.5, 2.0, 10.0):
        firsts = [c.presses[0].at for c in human_callers(CrowdOptions(callers=5, rate=rate))]
        assert min(firsts) > 0 and max(firsts) <= 1.0


# -- the human style's music --


def test_a_human_caller_plays_phrases_of_3_to_12_presses_and_pauses_between_them() -> None:
    # At 2 presses a second: presses 0.15–0.4 s apart inside a phrase, pauses of about
    # 0.5–4 s, every pause longer than any gap inside a phrase of the same caller.
    pauses: list[float] = []
    for caller in human_callers():
        inside = [g for g in gaps(caller) if g <= 0.45]
        between = [g for g in gaps(caller) if g > 0.45]
        assert between and len(inside) > 2 * len(between)  # most gaps are inside phrases
        assert max(inside) < 0.42 and min(between) > 0.5
        assert all(3 <= len(phrase) <= 12 for phrase in phrases(caller, 2.0))
        assert len(set(inside)) > 0.9 * len(inside)  # jittered, not on a lattice
        pauses += between
    assert max(pauses) < 4.5
    assert 1.5 < statistics.median(pauses) < 2.5


def test_a_human_caller_presses_its_few_favourite_keys_and_rarely_star_or_hash() -> None:
    counts: collections.Counter[str] = collections.Counter()
    top3_shares = []
    for caller in human_callers():
        keys = collections.Counter(press.key for press in caller.presses)
        counts += keys
        top3_shares.append(sum(n for _, n in keys.most_common(3)) / len(caller.presses))
    assert min(top3_shares) > 0.45  # uniform keys: 3/12 = 0.25
    assert statistics.median(top3_shares) > 0.75
    total = sum(counts.values())
    assert 0 < counts["*"] < 0.05 * total and 0 < counts["#"] < 0.05 * total
    assert set(counts) == set("0123456789*#")  # every key is played by someone


def test_a_human_caller_repeats_and_varies_motifs_it_played_before() -> None:
    # How often a phrase opens with the three keys an earlier phrase of the caller
    # opened with, against the same keys of the same caller in a shuffled order.
    def echoes(cut: list[list[str]]) -> float:
        openings = [tuple(phrase[:3]) for phrase in cut]
        return sum(o in openings[:i] for i, o in enumerate(openings) if i) / (len(cut) - 1)

    played, shuffled = [], []
    for n, caller in enumerate(human_callers()):
        cut = phrases(caller, 2.0)
        played.append(echoes(cut))
        keys = [press.key for press in caller.presses]
        random.Random(n).shuffle(keys)
        it = iter(keys)
        shuffled.append(echoes([[next(it) for _ in phrase] for phrase in cut]))
    assert statistics.mean(played) > 0.4
    assert statistics.mean(played) > 1.5 * statistics.mean(shuffled)
