"""Token buckets and settings, without I/O."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from relay.backoff import backoff_delay
from relay.config import (
    AriConfig,
    ConfigError,
    Installation,
    RelayConfig,
    TwilioConfig,
    fill_tokens,
    load_installation,
    pseudonym_key,
)
from relay.ratelimit import BucketsByKey, LogOnce, TokenBucket


def test_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.allow(0.05)  # half a token
    assert bucket.allow(0.1)
    assert [bucket.allow(10.0) for _ in range(4)] == [True, True, True, False]  # capped


def test_bucket_with_rate_zero_never_refuses() -> None:
    bucket = TokenBucket(rate=0, burst=1, now=0.0)
    assert all(bucket.allow(0.0) for _ in range(1000))


def test_a_bucket_takes_a_cost_and_lends_ahead_to_whoever_will_wait() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert not bucket.allow(0.0, cost=6) and bucket.allow(0.0, cost=5)
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert bucket.delay(0.0, cost=5) == 0.0
    assert bucket.delay(0.0, cost=2) == pytest.approx(0.2)  # borrowed: wait for it
    assert bucket.delay(0.2, cost=1) == pytest.approx(0.1)  # behind the debt
    assert bucket.delay(10.0) == 0.0  # paid back, and full again (but no more)
    assert TokenBucket(rate=0, burst=1, now=0.0).delay(0.0, cost=99) == 0.0


def test_buckets_by_key_forget_the_least_recently_seen() -> None:
    buckets = BucketsByKey(rate=1, burst=1, max_keys=2)
    assert buckets.allow("a", 0.0)
    assert not buckets.allow("a", 0.0)
    buckets.allow("b", 0.0)
    buckets.allow("c", 0.0)  # "a" is forgotten: a fresh bucket
    assert buckets.allow("a", 0.0)


def test_a_line_is_logged_once_per_key_then_again_after_its_interval() -> None:
    once = LogOnce()
    assert [once.allow("bad_json"), once.allow("bad_json"), once.allow("bad_seal")] == [
        True,
        False,
        True,
    ]
    assert not once.allow("bad_json", now=1e9)  # never again, by default
    once.forget()
    assert once.allow("bad_json")
    minutely = LogOnce(every_s=60.0)
    assert minutely.allow("x", 0.0) and not minutely.allow("x", 59.0)
    assert minutely.allow("x", 60.0)
    assert minutely.suppressed == 1


def test_a_crowd_of_keys_cannot_fill_the_log() -> None:
    once = LogOnce(every_s=60.0, burst=3, max_keys=2)
    assert [once.allow(("refused", str(n)), 0.0) for n in range(5)] == [True] * 3 + [False] * 2
    assert once.allow(("refused", "5"), 1.0)  # one line a second after the burst
    assert once.allow(("refused", "0"), 10.0)  # forgotten: only two keys are kept


def test_a_line_held_back_goes_to_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.logonce")
    logger = logging.getLogger("test.logonce")
    once = LogOnce()
    assert once.log(logger, logging.WARNING, "k", "refused %s", "a")
    assert not once.log(logger, logging.WARNING, "k", "refused %s", "b")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "refused a"),
        (logging.DEBUG, "refused b"),
    ]


def test_the_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    assert backoff_delay(0, 0.5, 30.0, lambda: 0.0) == 0.25
    assert backoff_delay(0, 0.5, 30.0, lambda: 1.0) == 0.5
    assert backoff_delay(3, 0.5, 30.0, lambda: 1.0) == 4.0
    assert backoff_delay(10, 0.5, 30.0, lambda: 1.0) == 30.0
    assert backoff_delay(10_000, 0.5, 30.0, lambda: 0.5) == 22.5
    assert backoff_delay(0, 0.5, 0.1, lambda: 1.0) == 0.1  # a cap below the first wait
    assert backoff_delay(-1, 0.5, 30.0, lambda: 1.0) == 0.5  # no attempt waits less


def load_config(
    path: str | Path | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, object] | None = None,
) -> RelayConfig:
    return load_installation(path, env, overrides).relay


def test_defaults_match_the_readme() -> None:
    config = load_config(env={})
    assert (config.host, config.port, config.channel) == ("0.0.0.0", 8080, "dialjam")
    assert config.max_frame == 4096 and config.token_max_frame == 65536
    assert config.history_events == 1000 and config.history_seconds == 600


def test_toml_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "dialjam.toml"
    path.write_text(
        '[relay]\nport = 9000\nchannel = "tower"\npublic_url = "https://jam.example.org"\n'
        "rate = 5\n[billboard]\nanything = 1\n"
    )
    config = load_config(path, env={"DIALJAM_PORT": "9100", "DIALJAM_RATE": "7.5"})
    assert config.port == 9100 and config.rate == 7.5 and config.channel == "tower"
    assert config.keypad_url() == "https://jam.example.org/keypad?channel=tower"
    config = load_config(path, env={"DIALJAM_PORT": "9100"}, overrides={"port": 9200})
    assert config.port == 9200


def test_console_url_keeps_the_token_out_of_the_query() -> None:
    config = RelayConfig(public_url="https://jam.example.org/", operator_token="tok")
    assert config.console_url() == "https://jam.example.org/console?channel=dialjam#token=tok"


@pytest.mark.parametrize(
    ("toml", "env", "fragment"),
    [
        ("[relay]\nprot = 1\n", {}, "no setting 'prot'"),
        ('[relay]\nport = "eighty"\n', {}, "port must be a whole number"),
        ("[relay]\nport = 70000\n", {}, "outside 0–65535"),
        ('[relay]\nchannel = "bad channel"\n', {}, "channel"),
        ('[relay]\nchannel = "x:control"\n', {}, "channel"),
        ('[relay]\npublic_url = "jam.example.org"\n', {}, "http://"),
        ("[relay\n", {}, "not valid TOML"),
        ("", {"DIALJAM_PORT": "x"}, "environment DIALJAM_PORT"),
        ("[relay]\nrate = -1\n", {}, "rate"),
        ('[relay]\nbackplane = "localhost:6379"\n', {}, "redis://HOST:PORT/DB"),
    ],
)
def test_bad_settings_say_what_to_fix(
    tmp_path: Path, toml: str, env: dict[str, str], fragment: str
) -> None:
    path = tmp_path / "dialjam.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path, env=env)


def test_a_missing_config_file_is_named() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/dialjam.toml", env={})


def test_missing_tokens_are_made_up_and_reported() -> None:
    config, made = fill_tokens(RelayConfig(operator_token="mine"))
    assert made == ["billboard"]
    assert config.operator_token == "mine" and len(config.billboard_token) >= 16


def test_the_pseudonym_key_is_one_fallback_as_lasting_as_the_token_it_comes_from() -> None:
    first, made = fill_tokens(RelayConfig(operator_token="mine", billboard_token="theirs"))
    again, _ = fill_tokens(RelayConfig(operator_token="mine", billboard_token="theirs"))
    assert made == [] and first.pseudonym_key and first.pseudonym_key == again.pseudonym_key
    assert first.pseudonym_key not in ("mine", "theirs")  # derived, never the token itself
    by_session, _ = fill_tokens(RelayConfig(operator_token="mine", session_key="sessions"))
    assert by_session.pseudonym_key != first.pseudonym_key
    config, made = fill_tokens(RelayConfig())
    assert made == ["operator", "billboard", "pseudonym"]  # all new this run, and said so
    assert fill_tokens(RelayConfig(pseudonym_key="k"))[0].pseudonym_key == "k"
    assert pseudonym_key(config) == config.pseudonym_key.encode()


def test_no_door_makes_up_a_pseudonym_key_of_its_own() -> None:
    with pytest.raises(ValueError, match="fill_tokens"):
        pseudonym_key(RelayConfig())


def test_the_installation_file_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    path = tmp_path / "dialjam.toml"
    path.write_text(
        '[relay]\nchannel = "tower"\npseudonym_key = "k"\npublic_url = "https://a.org"\n'
        "[twilio]\n"
        '[ari]\nurl = "http://127.0.0.1:8088"\n[billboard]\nbpm = 90\n'
    )
    reads: list[object] = []
    real_load = tomllib.load

    def load(f: object) -> dict[str, object]:
        reads.append(f)
        return real_load(f)  # type: ignore[arg-type]

    monkeypatch.setattr(tomllib, "load", load)
    site = load_installation(path, env={})
    assert len(reads) == 1
    assert isinstance(site, Installation) and site.path == str(path)
    assert (site.relay.channel, site.relay.pseudonym_key) == ("tower", "k")
    assert site.twilio == TwilioConfig() and site.ari == AriConfig(url="http://127.0.0.1:8088")
    assert site.table("billboard") == {"bpm": 90}
    assert site.origin("billboard") == f"{path} [billboard]"


def test_the_pseudonym_key_comes_from_the_environment_too() -> None:
    site = load_installation(env={"DIALJAM_PSEUDONYM_KEY": "from-env"})
    assert site.relay.pseudonym_key == "from-env" and site.path == ""


def test_the_example_config_in_the_repo_loads_and_states_the_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "dialjam.example.toml"
    assert load_config(example, env={}) == RelayConfig()


def test_the_example_configs_telephony_tables_once_uncommented_state_the_defaults(
    tmp_path: Path,
) -> None:
    example = Path(__file__).resolve().parents[2] / "dialjam.example.toml"
    text = example.read_text()
    site = load_installation(example, env={})
    assert site.twilio is None and site.ari is None  # off until the operator opts in
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line == "# [twilio]")
    setting = re.compile(r"# (\[\w+\]|\w+ = )")  # "# [ari]", "# url = …"; not prose
    uncommented = [line[2:] if setting.match(line) else line for line in lines[start:]]
    on = tmp_path / "on.toml"
    on.write_text("\n".join(lines[:start] + uncommented) + "\n")
    site = load_installation(on, env={"DIALJAM_PUBLIC_URL": "https://jam.example.org"})
    assert site.twilio == TwilioConfig()
    assert site.ari == AriConfig(url="http://127.0.0.1:8088")
