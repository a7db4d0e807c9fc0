"""The rehearsal crowd (relay.rehearsal) against a real relay on a free port: each ingress
path end to end into the crowd's own subscriber, its report, and its command line."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from relay.app import STATE, health
from relay.config import AriConfig, SipConfig, TwilioConfig
from relay.contract.subscriber import V2Subscriber
from relay.gateways.twilio import connect_twiml
from relay.rehearsal.callers import on_relay, read_twiml
from relay.rehearsal.checker import ArrivalChecker
from relay.rehearsal.cli import parse_options
from relay.rehearsal.crowd import run_crowd
from relay.rehearsal.plan import CallerPlan, CrowdOptions, Press, UsageError, plan_crowd
from relay.rehearsal.report import CrowdReport
from relay.rehearsal.scoring import ArrivalTally, match_presses
from tests.support.relay import StartRelay

ROOT = Path(__file__).resolve().parents[3]
PUBLIC = "https://jam.example.org"
TOKEN = "12345678901234567890123456789012"
# Steady: the tests below count on its presses (8 a caller, evenly spaced); the human
# style has its own test, and its plan's tests are in test_plan.py.
SMALL = CrowdOptions(callers=5, rate=4.0, duration=2.0, ramp=0.5, seed=1, drain=2.0, style="steady")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def assert_whole(report: CrowdReport, callers: int) -> None:
    """Every caller got through, and every press it sent was seen once, in order."""
    assert report.callers_failed == 0, report.render()
    assert report.joins_seen == report.leaves_seen == callers, report.render()
    assert report.presses_sent == report.presses_planned == callers * 8, report.render()
    assert report.presses_seen == report.presses_sent, report.render()
    assert (report.lost, report.duplicated, report.out_of_order) == (0, 0, 0), report.render()
    assert report.errors == {}, report.render()
    assert report.latency_max_ms is not None
    assert report.ok
    assert "PASS" in report.render()


# -- each path, end to end --


async def test_a_crowd_of_keypads_arrives_whole_at_the_subscriber(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    report = await run_crowd(dataclasses.replace(SMALL, relay=relay.url))
    assert_whole(report, 5)


@pytest.mark.timing
async def test_a_crowd_of_keypads_arrives_within_a_second_on_loopback(
    start_relay: StartRelay,
) -> None:
    # Wall-clock latency: on a loaded machine a press may wait, but never a second.
    relay = await start_relay()
    report = await run_crowd(dataclasses.replace(SMALL, relay=relay.url))
    assert_whole(report, 5)
    assert report.latency_max_ms is not None and report.latency_max_ms < 1000, report.render()


@pytest.mark.parametrize("via", ["ws", "twilio-audio"])
async def test_a_human_crowd_arrives_whole_phrases_and_all(
    start_relay: StartRelay, via: str
) -> None:
    # Phrases of quick presses: on a keypad against the relay's per-connection rate,
    # in the audio against the detector's tone-and-pause (the closest gaps there are).
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    options = dataclasses.replace(
        SMALL,
        via=via,
        relay=relay.url,
        public_url=PUBLIC,
        twilio_token=TOKEN,
        rate=3.0,
        duration=4.0,
        style="human",
    )
    report = await run_crowd(options)
    planned = sum(len(p.presses) for p in plan_crowd(options, 1))
    assert report.presses_planned == report.presses_sent == report.presses_seen == planned
    assert (report.lost, report.duplicated, report.out_of_order) == (0, 0, 0), report.render()
    assert report.errors == {} and report.ok, report.render()
    assert "(human style, seed 1," in report.render()


async def test_a_crowd_of_twilio_callers_with_signed_webhooks_arrives_whole(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    options = dataclasses.replace(
        SMALL, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_token=TOKEN
    )
    report = await run_crowd(options)
    assert_whole(report, 5)
    assert report.media_lag_max_ms is not None


async def test_a_crowd_whose_keys_are_tones_in_the_twilio_audio_is_heard(
    start_relay: StartRelay,
) -> None:
    # Needs the relay's in-band detector ([twilio] inband_dtmf, on by default).
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    options = dataclasses.replace(
        SMALL, via="twilio-audio", relay=relay.url, public_url=PUBLIC, twilio_token=TOKEN
    )
    report = await run_crowd(options)
    assert_whole(report, 5)
    assert report.latency_p50_ms is not None and report.latency_p50_ms >= 20  # 2 frames heard


async def test_a_crowd_through_the_fake_asterisk_arrives_whole(start_relay: StartRelay) -> None:
    port = free_port()
    ari = AriConfig(
        url=f"http://127.0.0.1:{port}",
        app="venue-jam",
        username="asterisk",
        password="s3cret",
        reconnect_max_s=0.2,
    )
    relay = await start_relay(ari=ari)
    lines: list[str] = []
    options = dataclasses.replace(
        SMALL,
        via="ari",
        relay=relay.url,
        ari_listen=("127.0.0.1", port),
        ari_wait=10.0,
        ari_app="venue-jam",
        ari_username="asterisk",
        ari_password="s3cret",
    )
    report = await run_crowd(options, say=lines.append)
    assert_whole(report, 5)
    assert any(f"point the relay's [ari] url at http://127.0.0.1:{port}" in x for x in lines)


async def test_a_crowd_of_sip_phones_arrives_whole(start_relay: StartRelay) -> None:
    base = random.randrange(30000, 60000, 2)
    sip = SipConfig(host="127.0.0.1", port=0, rtp_ports=f"{base}-{base + 19}")
    relay = await start_relay(sip=sip)
    listening = health(relay.app[STATE])["sip"]["listening"].split()[1]
    host, _, port = listening.rpartition(":")
    options = dataclasses.replace(SMALL, via="sip", relay=relay.url, sip_target=(host, int(port)))
    report = await run_crowd(options)
    assert_whole(report, 5)
    assert health(relay.app[STATE])["sip"]["calls"] == 0  # every phone hung up


async def test_a_crowd_plays_the_plans_and_calls_from_the_numbers_it_is_given(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    # bench/soak.py gives each path's crowd its own callers coming and going, and
    # numbers no other path uses.
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    plans = [
        CallerPlan(0, 0.0, (Press(0.1, "1"), Press(0.4, "2"), Press(0.7, "1")), 1.0),
        CallerPlan(1, 0.5, (Press(0.1, "#"),), 0.3),
    ]
    options = dataclasses.replace(
        SMALL, callers=2, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_token=TOKEN
    )
    caplog.set_level("INFO", logger="relay.twilio")
    report = await run_crowd(options, plans=plans, numbers=["+15550000012", "+15550000034"])
    assert report.ok, report.render()
    assert report.presses_planned == report.presses_sent == report.presses_seen == 4
    assert "(…12)" in caplog.text and "(…34)" in caplog.text  # the gateway's masked numbers
    with pytest.raises(UsageError, match="plans must number"):
        await run_crowd(dataclasses.replace(options, callers=3), plans=plans)


# -- failures are reported, not raised --


async def test_an_ari_crowd_whose_relay_never_connects_says_so_and_fails(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()  # no [ari]: nobody will connect to the fake Asterisk
    lines: list[str] = []
    options = dataclasses.replace(
        SMALL, via="ari", relay=relay.url, ari_listen=("127.0.0.1", 0), ari_wait=0.3
    )
    report = await run_crowd(options, say=lines.append)
    assert report.errors == {"no ARI client": 5}
    assert any("no ARI client connected to http://127.0.0.1:" in x for x in lines)
    assert not report.ok


async def test_a_wrong_twilio_token_shows_as_refused_calls_in_the_report(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    options = dataclasses.replace(
        SMALL, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_token="not-the-token"
    )
    lines: list[str] = []
    report = await run_crowd(options, say=lines.append)
    assert report.callers_failed == 5
    assert report.errors == {"voice webhook refused (403: signature)": 5}
    assert report.presses_sent == 0
    assert not report.ok
    assert "FAIL: 5 callers failed" in report.render()
    hints = [x for x in lines if "refused the webhook's X-Twilio-Signature" in x]
    assert len(hints) == 1 and PUBLIC in hints[0]


async def test_a_relay_that_is_not_there_fails_every_caller_without_a_traceback() -> None:
    options = dataclasses.replace(SMALL, relay=f"http://127.0.0.1:{free_port()}")
    lines: list[str] = []
    report = await run_crowd(options, say=lines.append)
    assert report.callers_failed == 5
    assert report.errors == {"relay unreachable": 5}
    assert any("cannot subscribe to dialjam" in x for x in lines)
    assert not report.ok


async def test_an_unchecked_crowd_only_counts_what_it_sent(start_relay: StartRelay) -> None:
    relay = await start_relay()
    options = dataclasses.replace(SMALL, callers=2, relay=relay.url, check=False)
    report = await run_crowd(options)
    assert (report.presses_sent, report.presses_seen, report.callers_failed) == (16, 0, 0)
    assert report.ok
    assert "not checked" in report.render()


async def test_stopping_the_crowd_hangs_everyone_up_and_reports_an_interruption(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    stop = asyncio.Event()
    options = dataclasses.replace(SMALL, relay=relay.url, duration=30.0)
    # Stopped once a press has arrived, not after a fixed time: a busy machine may take
    # a while to get the first caller through.
    watcher = asyncio.create_task(stop_at_the_first_digit(relay.ws_url, SMALL.channel, stop))
    report = await asyncio.wait_for(run_crowd(options, stop=stop), 60)
    watcher.cancel()
    assert report.interrupted and not report.ok
    assert report.callers_failed == 0
    assert 0 < report.presses_sent < report.presses_planned


async def stop_at_the_first_digit(ws_url: str, channel: str, stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_str(orjson.dumps({"type": "subscriber", "id": channel}).decode())
        async for msg in ws:
            data = orjson.loads(msg.data) if msg.type is aiohttp.WSMsgType.TEXT else None
            if isinstance(data, dict) and data.get("event") == "digit":
                stop.set()
                return


# -- the pure parts --


def test_the_arrival_check_scores_what_it_reads_at_the_times_it_is_given() -> None:
    # The checker's clock is a parameter: here the frames arrive at 10.05 and 10.30 s.
    tally = ArrivalTally()
    tally.add_caller("c-pfbnkdsvqt", 0)
    tally.sent("c-pfbnkdsvqt", "5", 10.0)
    tally.sent("c-pfbnkdsvqt", "#", 10.25)
    subscriber = V2Subscriber(["dialjam"])
    frames = [
        (10.05, [{"type": "subscribed", "id": "dialjam", "seq": 0, "epoch": "e"}, digit(1, "5")]),
        (10.30, [digit(2, "#"), {"type": "gap", "id": "dialjam", "from": 3, "to": 3}]),
    ]
    for now, frame in frames:
        ArrivalChecker.take(subscriber.receive(frame), tally, now)
    log = tally.by_caller["c-pfbnkdsvqt"]
    assert log.seen == [("5", 10.05), ("#", 10.30)]
    match = match_presses(log.sent, log.seen)
    assert (match.lost, match.duplicated, match.out_of_order) == (0, 0, 0)
    assert [round(x, 3) for x in match.latencies] == [0.05, 0.05]
    assert tally.errors == {"subscriber gap (events dropped)": 1}
    assert subscriber.position("dialjam") == (2, "e")


def digit(seq: int, key: str) -> dict[str, object]:
    data = {"event": "digit", "caller": "c-pfbnkdsvqt", "digit": key, "source": "web"}
    return {"type": "event", "id": "dialjam", "seq": seq, "ts": 0, "data": data}


def test_presses_are_matched_in_order_and_losses_duplicates_and_swaps_are_counted() -> None:
    sent = [("1", 0.0), ("2", 1.0), ("3", 2.0), ("4", 3.0)]
    assert match_presses(sent, [("1", 0.1), ("2", 1.1), ("3", 2.1), ("4", 3.1)]).lost == 0
    lost = match_presses(sent, [("1", 0.1), ("3", 2.1), ("4", 3.1)])
    assert (lost.lost, lost.duplicated, lost.out_of_order) == (1, 0, 0)
    twice = match_presses(sent, [("1", 0.1), ("1", 0.2), ("2", 1.1), ("3", 2.1), ("4", 3.1)])
    assert (twice.lost, twice.duplicated, twice.out_of_order) == (0, 1, 0)
    swapped = match_presses(sent, [("1", 0.1), ("3", 2.1), ("2", 2.2), ("4", 3.1)])
    assert (swapped.lost, swapped.duplicated, swapped.out_of_order) == (0, 0, 1)
    assert [round(x, 3) for x in match_presses(sent, [("1", 0.25)]).latencies] == [0.25]


def test_a_seeded_plan_is_the_same_every_time_and_spreads_the_starts_over_the_ramp() -> None:
    # Steady: one press every half second, half a period in.
    options = CrowdOptions(callers=4, rate=2.0, duration=3.0, ramp=2.0, style="steady")
    plan = plan_crowd(options, seed=42)
    assert plan == plan_crowd(options, seed=42)
    assert plan != plan_crowd(options, seed=43)
    assert [p.start for p in plan] == [0.0, 0.5, 1.0, 1.5]
    first: CallerPlan = plan[0]
    assert [p.at for p in first.presses] == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75]
    assert first.hang_up == 3.0


def test_the_twiml_gives_the_stream_and_its_parameters_and_the_stream_goes_to_the_relay() -> None:
    twiml = connect_twiml("wss://jam.example.org/twilio/stream", "Hi", {"caller": "c-1"})
    url, params = read_twiml(twiml.encode())
    assert (url, params) == ("wss://jam.example.org/twilio/stream", {"caller": "c-1"})
    assert on_relay(url, "http://127.0.0.1:8080") == "ws://127.0.0.1:8080/twilio/stream"


def test_options_come_from_the_installations_config(tmp_path: Path) -> None:
    config = tmp_path / "jam.toml"
    config.write_text(
        '[relay]\nchannel = "street"\npublic_url = "https://jam.example.org"\nrate = 10\n'
        f'[twilio]\nauth_token = "{TOKEN}"\nchannel = "phones"\n'
    )
    options, _ = parse_options(["--config", str(config), "--via", "twilio"], env={})
    assert (options.channel, options.twilio_token) == ("phones", TOKEN)
    assert (options.relay, options.public_url) == (PUBLIC, PUBLIC)
    options, _ = parse_options(["--config", str(config), "--relay", "http://127.0.0.1:9"], env={})
    assert (options.channel, options.relay) == ("street", "http://127.0.0.1:9")
    with pytest.raises(UsageError, match="not below the relay's limit of 10"):
        parse_options(["--config", str(config), "--rate", "12"], env={})


def test_the_fake_asterisk_listens_and_answers_as_the_relays_ari_table_says(
    tmp_path: Path,
) -> None:
    config = tmp_path / "jam.toml"
    config.write_text(
        '[ari]\nurl = "http://127.0.0.1:18188"\napp = "tower"\nusername = "pbx"\n'
        'password = "pw"\nchannel = "phones"\n'
    )
    options, _ = parse_options(["--config", str(config), "--via", "ari"], env={})
    assert options.ari_listen == ("127.0.0.1", 18188)
    assert (options.ari_app, options.ari_username, options.ari_password) == ("tower", "pbx", "pw")
    assert options.channel == "phones"


def test_sip_phones_call_the_listener_the_relays_sip_table_names(tmp_path: Path) -> None:
    config = tmp_path / "jam.toml"
    config.write_text('[sip]\nport = 5090\nchannel = "trunk"\n')
    options, _ = parse_options(["--config", str(config), "--via", "sip"], env={})
    assert options.sip_target == ("127.0.0.1", 5090) and options.channel == "trunk"
    options, _ = parse_options(["--via", "sip", "--sip", "192.0.2.1:5062"], env={})
    assert options.sip_target == ("192.0.2.1", 5062)


# -- the command line --


async def crowd_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay.rehearsal",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--callers", "0"], "--callers must be 1–2000"),
        (["--callers", "5000"], "--callers must be 1–2000"),
        (["--callers", "many"], "invalid int value: 'many'"),
        (["--rate", "25"], "not below the relay's limit of 20"),
        (["--via", "twilio-audio", "--rate", "10"], "at most 6 for twilio-audio"),
        (["--via", "carrier-pigeon"], "invalid choice: 'carrier-pigeon'"),
        (["--style", "swing"], "invalid choice: 'swing'"),
        (["--relay", "ftp://x"], "--relay 'ftp://x' must be an http:// or https:// address"),
        (["--ari-listen", "8088"], "--ari-listen '8088' must be HOST:PORT"),
        (["--config", "/nonexistent/jam.toml"], "does not exist"),
    ],
)
async def test_a_bad_option_is_one_clear_line_and_exit_status_2(args: list[str], says: str) -> None:
    code, out, err = await crowd_cli(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("python -m relay.rehearsal: error: ")
    assert says in err
    assert "Traceback" not in err


async def test_the_command_line_plays_a_crowd_and_exits_0_when_everything_arrived(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    code, out, err = await crowd_cli(
        *("--relay", relay.url, "--callers", "3", "--rate", "3", "--duration", "1"),
        *("--ramp", "0", "--style", "steady"),  # steady: 3 presses a caller, counted below
    )
    assert code == 0, out + err
    assert "dialjam crowd: 3 callers via ws" in out
    assert "steady style" in out
    assert "9 planned, 9 sent, 9 seen: 0 lost, 0 duplicated, 0 out of order" in out
    assert "PASS" in out
