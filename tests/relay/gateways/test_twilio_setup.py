"""What the Twilio gateway needs of the installation, refused at start when it is not
there: a public_url Twilio can use (https://, port 443, no query or fragment; errors
31922 and 31910 otherwise), an explicit allow_insecure_url for a rehearsal on loopback
only, and its secrets from the file or the environment."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from relay.config import ConfigError, Installation, RelayConfig, TwilioConfig, load_installation
from relay.runtime import announce
from tests.support.processes import STARTUP_S, start_process
from tests.support.relay import StartRelay
from tests.support.twilio import TOKEN, webhook_form


def _load(
    tmp_path: Path, relay: str, twilio: str = "", env: dict[str, str] | None = None
) -> Installation:
    path = tmp_path / "venue.toml"
    path.write_text(f"[relay]\n{relay}\n[twilio]\n{twilio}\n")
    return load_installation(path, env=env or {})


@pytest.mark.parametrize(
    ("relay", "fragments"),
    [
        ("", ["public_url", "is empty", "would get 403", "https://", "port 443"]),
        ('public_url = "http://jam.example.org"', ["not https://", "31922"]),
        ('public_url = "https://jam.example.org:8443"', ["port is 8443", "31910"]),
        ('public_url = "https://jam.example.org/?venue=a"', ["query string or fragment"]),
        ('public_url = "https://jam.example.org/#top"', ["query string or fragment"]),
        ('public_url = "https://me:pw@jam.example.org"', ["user name or password"]),
        (
            'host = "10.1.2.3"',  # empty public_url: http://10.1.2.3:8080
            ["is empty", "http://10.1.2.3:8080", "would get 403"],
        ),
    ],
    ids=["empty", "http", "port 8443", "query", "fragment", "user", "empty on a LAN host"],
)
def test_a_public_url_twilio_cannot_use_is_refused_at_start_naming_the_key_and_the_file(
    tmp_path: Path, relay: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, relay)
    text = str(refused.value)
    assert str(tmp_path / "venue.toml") in text and "[twilio] is on" in text
    assert "public_url" in text and "allow_insecure_url = true" in text
    for fragment in fragments:
        assert fragment in text


@pytest.mark.parametrize(
    "url",
    ["https://jam.example.org", "https://jam.example.org/", "https://jam.example.org:443/jam/"],
)
def test_an_https_public_url_on_port_443_with_any_path_serves_twilio(
    tmp_path: Path, url: str
) -> None:
    assert _load(tmp_path, f'public_url = "{url}"').twilio == TwilioConfig()


def test_without_twilio_the_relay_keeps_any_public_url(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    path.write_text('[relay]\npublic_url = "http://10.0.0.5:8080"\n')
    assert load_installation(path, env={}).relay.public_url == "http://10.0.0.5:8080"
    path.write_text('[relay]\npublic_url = "http://10.0.0.5:8080"\n[twilio]\nenabled = false\n')
    assert load_installation(path, env={}).twilio is None


@pytest.mark.parametrize(
    "relay",
    [
        'public_url = "http://127.0.0.1:8080"',
        'public_url = "http://localhost:9000/jam/"',
        'public_url = "https://127.0.0.1:8443"',
        'host = "127.0.0.1"',  # empty public_url: http://127.0.0.1:8080
    ],
)
def test_a_rehearsal_on_loopback_says_allow_insecure_url_and_is_let_through(
    tmp_path: Path, relay: str
) -> None:
    with pytest.raises(ConfigError):
        _load(tmp_path, relay)
    twilio = _load(tmp_path, relay, "allow_insecure_url = true").twilio
    assert twilio is not None and twilio.allow_insecure_url


def test_allow_insecure_url_is_refused_for_a_host_that_is_not_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"refused for 10\.0\.0\.5, which is not a loopback"):
        _load(tmp_path, 'public_url = "http://10.0.0.5:8080"', "allow_insecure_url = true")
    with pytest.raises(ConfigError, match="31910"):
        _load(tmp_path, 'public_url = "https://jam.example.org:8443"', "allow_insecure_url = true")


def test_the_secrets_come_from_the_file_or_the_environment(tmp_path: Path) -> None:
    https = 'public_url = "https://jam.example.org"'
    twilio = _load(tmp_path, https, 'auth_token = "file"\nshared_keys = "KS1:s1, KS2:s2"').twilio
    assert twilio is not None and (twilio.auth_token, twilio.shared_keys) == (
        "file",
        "KS1:s1, KS2:s2",
    )
    env = {"DIALJAM_TWILIO_AUTH_TOKEN": "env", "DIALJAM_TWILIO_SHARED_KEYS": "KS9:s9"}
    twilio = _load(tmp_path, https, 'auth_token = "file"', env=env).twilio
    assert twilio is not None and (twilio.auth_token, twilio.shared_keys) == ("env", "KS9:s9")
    # Without the table the environment turns nothing on.
    assert load_installation(env={**env, "DIALJAM_PUBLIC_URL": "https://a.org"}).twilio is None


@pytest.mark.parametrize(
    ("twilio", "env", "where"),
    [
        ('shared_keys = "KS1-no-secret"', {}, "venue.toml [twilio]: shared_keys: entry 1"),
        ('shared_keys = "KS1:topsecret, KS1:again"', {}, "'KS1' is given twice"),
        ("", {"DIALJAM_TWILIO_SHARED_KEYS": "KS1:topsecret,:x"}, "DIALJAM_TWILIO_SHARED_KEYS"),
    ],
)
def test_malformed_shared_keys_are_named_without_their_secrets(
    tmp_path: Path, twilio: str, env: dict[str, str], where: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, 'public_url = "https://jam.example.org"', twilio, env)
    assert where in str(refused.value) and "KEYID:SECRET" in str(refused.value)
    assert "topsecret" not in str(refused.value)


async def test_python_m_relay_refuses_to_start_with_an_http_public_url_and_says_why(
    tmp_path: Path,
) -> None:
    config = tmp_path / "venue.toml"
    config.write_text('[relay]\npublic_url = "http://jam.example.org"\n[twilio]\n')
    proc = await start_process("--config", str(config))
    _, stderr = await asyncio.wait_for(proc.communicate(), STARTUP_S)
    text = stderr.decode()
    assert proc.returncode == 2
    assert f"{config}: [twilio] is on, but public_url" in text and "31922" in text
    assert "Traceback" not in text


def test_the_start_summary_names_the_status_callback_and_the_shared_key_ids_only() -> None:
    lines: list[str] = []
    config = RelayConfig(public_url="https://jam.example.org")
    twilio = TwilioConfig(shared_keys="KS1:first-secret, KS2:second-secret")
    announce(config, [], lines.append, twilio)
    text = "\n".join(lines)
    assert "https://jam.example.org/twilio/stream-status" in text
    assert "KS1, KS2" in text and "secret" not in text
    assert "anyone can pose" not in text  # shared keys alone are checked signatures
    lines.clear()
    rehearsal = RelayConfig(host="127.0.0.1", public_url="http://127.0.0.1:8080")
    announce(rehearsal, [], lines.append, TwilioConfig(allow_insecure_url=True, auth_token="t"))
    assert any("allow_insecure_url: a rehearsal" in line for line in lines)


async def test_a_public_url_with_a_path_and_a_trailing_slash_is_signed_and_streamed_under_it(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(
        public_url="https://jam.example.org/jam/", twilio=TwilioConfig(auth_token=TOKEN)
    )
    form = webhook_form()
    # The proxy strips /jam; Twilio signed the address it posted to.
    signature = RequestValidator(TOKEN).compute_signature(
        "https://jam.example.org/jam/twilio/voice", form
    )
    headers = {"X-Twilio-Signature": signature}
    async with relay.session.post(f"{relay.url}/twilio/voice", data=form, headers=headers) as resp:
        assert resp.status == 200
        stream = ET.fromstring(await resp.read()).find("./Connect/Stream")
    assert stream is not None
    assert stream.attrib["url"] == "wss://jam.example.org/jam/twilio/stream"
    assert stream.attrib["statusCallback"] == "https://jam.example.org/jam/twilio/stream-status"
