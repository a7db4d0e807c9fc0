"""The Asterisk ARI gateway's real client, in a real relay on a free port, against the
fake ARI server (relay/rehearsal/fake_ari.py), which speaks Asterisk's wire format as
its REST API documents it (rest-api/api-docs/events.json and channels.json in
Asterisk's source; https://docs.asterisk.org/Configuration/Interfaces/Asterisk-REST-Interface-ARI/).
The gateway's pure core is tested in test_ari_core.py; how it copes with real
Asterisk's ways in test_ari_real.py; kicks in test_kicks.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from relay.config import AriConfig, ConfigError, RelayConfig, load_installation
from relay.contract.privacy import pseudonym
from relay.rehearsal.fake_ari import FakeAri, channel_json
from relay.runtime import announce
from tests.support.relay import StartRelay, recv, until

from .ari_calls import DIGITS, KEY, NUMBER, PASSWORD, USER, digit, joined, left
from .ari_relay import ari_config, ari_health, call_and_join, start
from .listeners import nothing_published

# -- the client in a real relay against the fake --


async def test_a_caller_is_answered_and_prompted_and_then_joins(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    channel_id = await fake.call(NUMBER)
    assert await recv(sub) == joined()
    rest = [(m, p, q) for m, p, q in fake.requests if p.startswith(f"/ari/channels/{channel_id}")]
    assert rest == [
        ("POST", f"/ari/channels/{channel_id}/answer", {}),
        ("POST", f"/ari/channels/{channel_id}/play", {"media": "sound:beep"}),
    ]
    assert ("GET", "/ari/applications/dialjam", {}) in fake.requests  # the first resync
    health = await ari_health(relay)
    assert health["status"] == "connected" and health["callers"] == 1
    assert health["app"] == "dialjam"


async def test_presses_become_digits_in_order(start_relay: StartRelay, fake: FakeAri) -> None:
    _, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    for key in "15#*A0":
        await fake.press(channel_id, key)
    assert [await recv(sub) for _ in range(6)] == [digit(k) for k in "15#*A0"]


async def test_a_caller_who_hangs_up_leaves_once(start_relay: StartRelay, fake: FakeAri) -> None:
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    await fake.hang_up(channel_id)
    assert await recv(sub) == left()
    await nothing_published(relay, sub)
    assert (await ari_health(relay))["callers"] == 0


async def test_the_events_go_to_the_configured_channel_with_the_configured_prompt(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    _, sub = await start(start_relay, fake, channel="lobby", prompt="sound:hello,tone:ring")
    channel_id, event = await call_and_join(fake, sub)
    assert event == joined()
    plays = [q for m, p, q in fake.requests if p.endswith("/play")]
    assert plays == [{"media": "sound:hello,tone:ring"}]
    assert channel_id


async def test_an_empty_prompt_plays_nothing(start_relay: StartRelay, fake: FakeAri) -> None:
    _, sub = await start(start_relay, fake, prompt="")
    await call_and_join(fake, sub)
    assert not [p for _, p, _ in fake.requests if p.endswith("/play")]


async def test_callers_without_a_number_join_under_pseudonyms_of_their_own(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    _, sub = await start(start_relay, fake)
    _, a = await call_and_join(fake, sub, None)
    _, b = await call_and_join(fake, sub, None)
    assert a["caller"] != b["caller"]
    assert a["display"] is None and b["display"] is None


async def test_the_full_number_never_reaches_logs_or_events(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    relay, sub = await start(start_relay, fake)
    channel_id, join = await call_and_join(fake, sub)
    await fake.press(channel_id, "5")
    events = [join, await recv(sub)]
    await fake.hang_up(channel_id)
    events.append(await recv(sub))
    await fake.send("not json")  # a refusal is logged too
    await nothing_published(relay, sub)
    text = caplog.text + repr(events) + repr(await relay.healthz())
    assert caplog.records
    for secret in (NUMBER, DIGITS, DIGITS[1:], PASSWORD):
        assert secret not in text


async def test_an_answer_refused_with_404_joins_nobody(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    # A StasisStart for a channel Asterisk no longer has: the answer gets 404.
    await fake.send({"type": "StasisStart", "args": [], "channel": channel_json("404.1", NUMBER)})

    async def refused() -> bool:
        return relay.state.errors.get("ari_rest_404", 0) == 1

    await until(refused)
    await nothing_published(relay, sub)
    assert not [p for _, p, _ in fake.requests if p.endswith("/play")]
    # and the client goes on
    await call_and_join(fake, sub)


async def test_a_prompt_that_fails_still_lets_the_caller_join(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    relay, sub = await start(start_relay, fake)
    fake.failures["/play"] = 500
    await call_and_join(fake, sub)
    await call_and_join(fake, sub, "+15550000002")
    assert relay.state.errors["ari_rest_500"] == 2
    assert len([r for r in caplog.records if "HTTP 500" in r.getMessage()]) == 1


async def test_malformed_events_are_counted_and_the_next_good_one_works(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    channel = fake.channels[channel_id]
    await fake.send("{not json")
    await fake.send("[1, 2, 3]")
    await fake.send({"type": "ChannelDtmfReceived", "digit": "5", "duration_ms": 80})
    await fake.send({"type": "ChannelDtmfReceived", "digit": "E", "channel": channel})
    await fake.send({"type": "TotallyNew", "channel": channel})
    await fake.send({"type": "PlaybackFinished", "playback": {"id": "x"}})  # normal: quiet
    await fake.press(channel_id, "9")
    assert await recv(sub) == digit("9")
    errors = relay.state.errors
    assert errors["ari_bad_json"] == 2
    assert errors["ari_bad_field"] == 1
    assert errors["ari_bad_digit"] == 1
    assert errors["ari_unknown_event"] == 1
    ignored = [r for r in caplog.records if "ignored an ARI message" in r.getMessage()]
    assert len(ignored) == 4  # once per kind


async def test_bad_credentials_are_logged_once_and_retried_with_backoff(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="relay.ari")
    relay = await start_relay(ari=ari_config(fake, password="wrong-password"))

    async def retried() -> bool:
        return fake.refused >= 3

    await until(retried)
    health = await ari_health(relay)
    assert health["status"] == "reconnecting" and health["last_error"] == "unauthorised"
    assert relay.state.errors["ari_unauthorised"] >= 3
    told = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(told) == 1 and "ari.conf" in told[0].getMessage()
    assert "wrong-password" not in caplog.text
    assert fake.listener is None


async def test_a_dropped_socket_is_reconnected_and_resynced(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    gone, _ = await call_and_join(fake, sub)
    stays, stayer = await call_and_join(fake, sub, "+15550000002")
    await fake.drop()
    # While the client is away one caller hangs up: Asterisk drops the events.
    await fake.hang_up(gone)
    await fake.wait_clients(2)
    assert await recv(sub) == left()
    await fake.press(stays, "3")  # the one who stayed plays on, without a second join
    assert await recv(sub) == digit("3", stayer["caller"])
    health = await ari_health(relay)
    assert health["connections"] == 2 and health["callers"] == 1


async def test_a_new_relay_finds_the_calls_already_in_the_app(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    # Calls that entered the app under an earlier relay (restarted since) are still
    # there: one up, one still ringing.
    fake.apps["dialjam"] = None
    up = fake.add_channel("+15550000003", state="Up")
    ringing = fake.add_channel("+15550000004", state="Ring")
    relay, sub = await start(start_relay, fake)
    events = [await recv(sub), await recv(sub)]
    callers = {pseudonym("15550000003", KEY.encode()), pseudonym("15550000004", KEY.encode())}
    assert [e["event"] for e in events] == ["join", "join"]
    assert {e["caller"] for e in events} == callers
    await fake.answered(ringing)  # the ringing one was answered before it joined
    assert up not in fake.answered_ids
    assert (await ari_health(relay))["callers"] == 2


async def test_shutting_the_relay_down_closes_the_ari_client(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, _ = await start(start_relay, fake)
    await relay.runner.cleanup()

    async def closed() -> bool:
        return fake.listener is None

    await until(closed)


async def test_without_the_gateway_the_health_has_no_ari(start_relay: StartRelay) -> None:
    relay = await start_relay()
    assert "ari" not in await relay.healthz()


def test_the_operator_is_told_where_the_client_connects_but_never_the_password() -> None:
    lines: list[str] = []
    config = AriConfig(url="http://pbx:8088", username=USER, password=PASSWORD)
    announce(RelayConfig(), [], lines.append, ari=config)
    text = "\n".join(lines)
    assert "http://pbx:8088" in text and "Stasis(dialjam)" in text
    # The pattern that takes +E.164 numbers and trunks' "s", and what proves the name.
    assert "_[+0-9].,1,Stasis(dialjam)" in text and "s,1,Stasis(dialjam)" in text
    assert "app_proven" in text
    assert PASSWORD not in text


# -- the [ari] table --


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dialjam.toml"
    path.write_text(text)
    return path


def load_ari_config(path: Path | None, env: dict[str, str]) -> AriConfig | None:
    return load_installation(path, env).ari


def test_the_ari_table_with_a_url_turns_the_gateway_on(tmp_path: Path) -> None:
    assert load_ari_config(_write(tmp_path, "[relay]\nport = 9000\n"), env={}) is None
    assert load_ari_config(None, env={}) is None
    assert load_ari_config(_write(tmp_path, "[ari]\n"), env={}) is None  # no url
    path = _write(
        tmp_path,
        '[ari]\nurl = "http://127.0.0.1:8088"\nusername = "u"\npassword = "p"\n'
        'prompt = ""\nreconnect_max_s = 5\nlost_after_s = 90\nmedia_host = "10.0.0.5"\n',
    )
    assert load_ari_config(path, env={}) == AriConfig(
        url="http://127.0.0.1:8088",
        username="u",
        password="p",
        prompt="",
        reconnect_max_s=5.0,
        lost_after_s=90.0,
        media_host="10.0.0.5",
    )
    assert load_ari_config(None, env={"DIALJAM_CONFIG": str(path)}) is not None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[ari]\nurl = "127.0.0.1:8088"\n', "url"),
        ('[ari]\nurl = "ftp://pbx"\n', "url"),
        ('[ari]\nurl = "http://pbx"\nsecret = "x"\n', "'secret'"),
        ('[ari]\nurl = "http://pbx"\npseudonym_key = "k"\n', "one pseudonym_key, in [relay]"),
        ('[ari]\nurl = "http://pbx"\nchannel = "a:control"\n', "channel"),
        ('[ari]\nurl = "http://pbx"\napp = "a/b"\n', "app"),
        ('[ari]\nurl = "http://pbx"\nreconnect_max_s = 0\n', "reconnect_max_s"),
        ('[ari]\nurl = "http://pbx"\nlost_after_s = -1\n', "lost_after_s"),
        ('[ari]\nurl = "http://pbx"\nreconnect_max_s = "soon"\n', "reconnect_max_s"),
        ("[ari]\nurl = 8088\n", "url"),
        ('ari = "x"\n', "[ari] must be a table"),
    ],
)
def test_a_wrong_ari_setting_is_named(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_ari_config(_write(tmp_path, text), env={})
    assert fragment in str(exc.value)
