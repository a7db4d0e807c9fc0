"""The rehearsal crowd signs as Twilio with twilio-python, never with the gateway's own
function, so a wrong assumption in the gateway fails a rehearsal instead of passing
it: against a real relay on a free port, with the auth token or a shared key."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiohttp import web

import relay.gateways.twilio as gateway
import relay.gateways.twilio_signature as signatures
from relay.config import TwilioConfig
from relay.rehearsal.callers import TWILIO_MISSING
from relay.rehearsal.cli import parse_options
from relay.rehearsal.crowd import run_crowd
from relay.rehearsal.plan import CrowdOptions, UsageError
from tests.support.relay import StartRelay

PUBLIC = "https://jam.example.org"
TOKEN = "12345678901234567890123456789012"
SMALL = CrowdOptions(callers=5, rate=4.0, duration=2.0, ramp=0.5, seed=1, drain=2.0, style="steady")
KEY = "KSfeedfacefeedfacefeedfacefeedface:shared-secret"


async def test_a_crowd_signing_with_a_shared_key_arrives_whole(start_relay: StartRelay) -> None:
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(shared_keys=KEY))
    options = dataclasses.replace(
        SMALL, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_shared_key=KEY
    )
    report = await run_crowd(options)
    assert report.ok and report.callers_failed == 0, report.render()
    assert report.presses_seen == report.presses_sent == report.presses_planned == 40
    assert "twilio_bad_signature" not in relay.state.errors


async def test_a_gateway_whose_signature_is_wrong_fails_the_rehearsal(
    start_relay: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the crowd to sign with the gateway's function, both would agree and pass.
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    real = signatures.compute_signature

    def without_values(
        secret: str, url: str, params: Iterable[tuple[str, str]] = (), algorithm: str = "HMAC_SHA1"
    ) -> str:  # a gateway that signs the parameters' names only
        return real(secret, url, [(name, "") for name, _ in params], algorithm)

    monkeypatch.setattr(signatures, "compute_signature", without_values)
    options = dataclasses.replace(
        SMALL, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_token=TOKEN
    )
    report = await run_crowd(options)
    assert report.errors == {"voice webhook refused (403: signature)": 5}
    assert not report.ok


async def test_a_gateway_assuming_another_upgrade_url_fails_and_the_hint_names_the_url_signed(
    start_relay: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    # A gateway that checks the upgrade over ws:// instead of the wss:// URL it gave.
    real = gateway.TwilioGateway.requested_url

    def insecure_upgrade(self: gateway.TwilioGateway, request: web.Request) -> str:
        url = real(self, request)
        return url.replace("https://", "http://") if request.method == "GET" else url

    monkeypatch.setattr(gateway.TwilioGateway, "requested_url", insecure_upgrade)
    options = dataclasses.replace(
        SMALL, callers=2, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_token=TOKEN
    )
    lines: list[str] = []
    report = await run_crowd(options, say=lines.append)
    assert report.errors == {"stream refused (403)": 2}
    hints = [line for line in lines if "stream upgrade's X-Twilio-Signature" in line]
    assert len(hints) == 1
    assert "twilio-python over wss://jam.example.org/twilio/stream" in hints[0]


async def test_without_twilio_python_the_crowd_says_how_to_install_it(
    start_relay: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    monkeypatch.setitem(sys.modules, "twilio.request_validator", None)  # import fails
    options = dataclasses.replace(
        SMALL, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_token=TOKEN
    )
    lines: list[str] = []
    report = await run_crowd(options, say=lines.append)
    assert report.errors == {TWILIO_MISSING: 5}
    assert lines.count(TWILIO_MISSING) == 1 and "pip install 'twilio>=9.13'" in TWILIO_MISSING


def test_the_shared_key_comes_from_the_flag_or_the_configs_first_when_it_has_no_token(
    tmp_path: Path,
) -> None:
    config = tmp_path / "venue.toml"
    config.write_text(
        f'[relay]\npublic_url = "{PUBLIC}"\n[twilio]\nshared_keys = "KS1:one, KS2:two"\n'
    )
    options, _ = parse_options(["--config", str(config), "--via", "twilio"], env={})
    assert (options.twilio_token, options.twilio_shared_key) == ("", "KS1:one")
    flag = ["--config", str(config), "--via", "twilio", "--twilio-shared-key", "KS2:two"]
    assert parse_options(flag, env={})[0].twilio_shared_key == "KS2:two"
    config.write_text(
        f'[relay]\npublic_url = "{PUBLIC}"\n[twilio]\nauth_token = "t"\nshared_keys = "KS1:one"\n'
    )
    options, _ = parse_options(["--config", str(config), "--via", "twilio"], env={})
    assert (options.twilio_token, options.twilio_shared_key) == ("t", "")
    with pytest.raises(UsageError, match="KEYID:SECRET"):
        parse_options(["--via", "twilio", "--twilio-shared-key", "no-colon"], env={})
