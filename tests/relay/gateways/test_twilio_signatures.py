"""Who may speak as Twilio, against a real relay on a free port: the auth token's
HMAC-SHA1 or a Webhooks Rule's shared-key HMAC-SHA256, as the headers say
(X-Twilio-Webhooks-Signature-Settings), signed by twilio-python's RequestValidator and
by an independent computation following Twilio's docs; a refusal says exactly what was
expected and what was received, once per reason; the stream's statusCallback; and a
caller whose number has no digits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest
from twilio.request_validator import (  # type: ignore[import-untyped]
    RequestValidator,
    get_signature_algorithm,
)

from relay.config import TwilioConfig
from relay.gateways.twilio import stream_error
from relay.gateways.twilio_signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    Keys,
    check,
    compute_signature,
    parse_settings,
)
from tests.support.relay import RunningRelay, StartRelay, recv, send, until
from tests.support.twilio import (
    CALL_SID,
    NUMBER,
    PUBLIC,
    STREAM_SID,
    TOKEN,
    start_message,
    webhook_form,
)

from .listeners import nothing_published, subscribe

KEY_ID = "KS1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
SECRET = "shared-key-secret-0123456789abcdef"
VOICE = f"{PUBLIC}/twilio/voice"
STREAM = "wss://jam.example.org/twilio/stream"
STATUS = f"{PUBLIC}/twilio/stream-status"
SHA256_SETTINGS = f"key={KEY_ID},algorithm=HMAC_SHA256"


def by_the_docs(secret: str, url: str, params: dict[str, str], digest: Any) -> str:
    """Twilio's documented recipe, written out here: the URL, then each POST parameter
    sorted by name, name followed by value; HMAC with the secret; base64."""
    text = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), digest).digest()).decode()


async def start(start_relay: StartRelay, **twilio: Any) -> RunningRelay:
    return await start_relay(public_url=PUBLIC, pseudonym_key="k", twilio=TwilioConfig(**twilio))


async def post(
    relay: RunningRelay, path: str, form: dict[str, str], headers: dict[str, str]
) -> int:
    async with relay.session.post(f"{relay.url}{path}", data=form, headers=headers) as resp:
        await resp.read()
        return resp.status


def sha256_headers(url: str, params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    signature = RequestValidator(secret).compute_signature(url, params, algorithm=HMAC_SHA256)
    return {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": SHA256_SETTINGS,
    }


# -- the signature itself (pure) --


@pytest.mark.parametrize("algorithm", [HMAC_SHA1, HMAC_SHA256])
def test_our_signature_agrees_with_twilio_python_and_with_the_docs_recipe(algorithm: str) -> None:
    params = webhook_form()
    digest = hashlib.sha256 if algorithm == HMAC_SHA256 else hashlib.sha1
    ours = compute_signature(SECRET, VOICE, params.items(), algorithm)
    assert ours == RequestValidator(SECRET).compute_signature(VOICE, params, algorithm=algorithm)
    assert ours == by_the_docs(SECRET, VOICE, params, digest)
    other = HMAC_SHA1 if algorithm == HMAC_SHA256 else HMAC_SHA256
    assert ours != compute_signature(SECRET, VOICE, params.items(), other)


@pytest.mark.parametrize(
    "header",
    [
        "key=KS1,algorithm=HMAC_SHA256",
        " algorithm = HMAC_SHA256 , key = KS1 ",
        "key=KS1",
        "key=KS1,algorithm=hmac_sha256",
        "algorithm=HMAC_SHA1,key=KS1,extra=1",
        "",
    ],
)
def test_the_settings_header_is_read_as_twilio_python_reads_it(header: str) -> None:
    settings = parse_settings(header)
    assert settings.algorithm == get_signature_algorithm(header).upper()
    assert settings.key == ("KS1" if "KS1" in header else "")


def test_an_empty_settings_header_means_the_auth_tokens_signature() -> None:
    params = webhook_form()
    sha1 = RequestValidator(TOKEN).compute_signature(VOICE, params)
    keys = Keys(TOKEN, {KEY_ID: SECRET})
    for settings in (None, "", "  "):
        assert check(keys, VOICE, params.items(), sha1, settings).ok
    assert not check(keys, VOICE, params.items(), sha1, SHA256_SETTINGS).ok
    assert check(Keys(), VOICE, params.items(), None, None).ok  # nothing to check with


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"StreamError": "31920 Stream - WebSocket - Handshake Error"}, ("31920", "31920 Stream")),
        ({"StreamError": "Handshake failed", "ErrorCode": "31920"}, ("31920", "Handshake failed")),
        ({"StreamError": "no code\nhere"}, ("", "no code here")),
        ({}, ("", "")),
        ({"StreamError": "call +1 415 555 0112 failed"}, ("", "call … failed")),
    ],
)
def test_a_stream_errors_code_and_message_are_read_from_its_form(
    form: dict[str, str], expected: tuple[str, str]
) -> None:
    code, message = stream_error(form)
    assert code == expected[0] and message.startswith(expected[1])
    assert "555" not in message


# -- webhooks and upgrades on a real relay --


async def test_a_webhook_signed_with_a_shared_key_and_hmac_sha256_is_answered(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay, auth_token=TOKEN, shared_keys=f"KSother:x, {KEY_ID}:{SECRET}")
    form = webhook_form()
    assert await post(relay, "/twilio/voice", form, sha256_headers(VOICE, form)) == 200
    # The same, signed as the docs say rather than by twilio-python.
    independent = {
        "X-Twilio-Signature": by_the_docs(SECRET, VOICE, form, hashlib.sha256),
        "X-Twilio-Webhooks-Signature-Settings": SHA256_SETTINGS,
    }
    assert await post(relay, "/twilio/voice", form, independent) == 200
    # The auth token's HMAC-SHA1 still passes when no settings header is sent.
    sha1 = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(VOICE, form)}
    assert await post(relay, "/twilio/voice", form, sha1) == 200
    assert relay.state.errors.get("twilio_bad_signature") is None


async def test_a_stream_upgrade_signed_with_a_shared_key_opens(start_relay: StartRelay) -> None:
    relay = await start(start_relay, shared_keys=f"{KEY_ID}:{SECRET}")
    ws = await relay.connect("/twilio/stream", headers=sha256_headers(STREAM, {}))
    await ws.close()


def _refused() -> list[tuple[str, dict[str, str], list[str]]]:
    """(what, headers, what the log must say) for requests the headers do not sign."""
    form = webhook_form()
    sha1 = RequestValidator(TOKEN).compute_signature(VOICE, form)
    sha256 = RequestValidator(SECRET).compute_signature(VOICE, form, algorithm=HMAC_SHA256)
    settings = "X-Twilio-Webhooks-Signature-Settings"
    return [
        (
            "the auth token's signature under a settings header",
            {"X-Twilio-Signature": sha1, settings: SHA256_SETTINGS},
            [f"is not HMAC_SHA256 with shared key {KEY_ID} over", VOICE],
        ),
        (
            "a shared-key signature without the settings header",
            {"X-Twilio-Signature": sha256},
            ["is not HMAC_SHA1 with the auth token over", VOICE, "jam.example.org:443"],
        ),
        (
            "a key id the relay does not have",
            {"X-Twilio-Signature": sha256, settings: "key=KSunknown,algorithm=HMAC_SHA256"},
            ["names key 'KSunknown'", f"expected one of [twilio] shared_keys' ids ({KEY_ID})"],
        ),
        (
            "an algorithm Twilio does not use",
            {"X-Twilio-Signature": sha256, settings: f"key={KEY_ID},algorithm=HMAC_MD5"},
            ["names algorithm 'HMAC_MD5'", "expected HMAC_SHA256 or HMAC_SHA1"],
        ),
        (
            "no signature",
            {settings: SHA256_SETTINGS},
            ["no X-Twilio-Signature header", f"HMAC_SHA256 with shared key {KEY_ID}"],
        ),
        (
            "the right signature for another URL",
            sha256_headers(f"{PUBLIC}/twilio/other", form),
            ["over https://jam.example.org/twilio/voice", "POST parameters AccountSid"],
        ),
    ]


@pytest.mark.parametrize(("what", "headers", "said"), _refused(), ids=[r[0] for r in _refused()])
async def test_a_refused_webhook_says_what_was_expected_and_received_and_nothing_secret(
    start_relay: StartRelay,
    caplog: pytest.LogCaptureFixture,
    what: str,
    headers: dict[str, str],
    said: list[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="relay.twilio")
    relay = await start(start_relay, auth_token=TOKEN, shared_keys=f"{KEY_ID}:{SECRET}")
    sub = await subscribe(relay)
    assert await post(relay, "/twilio/voice", webhook_form(), headers) == 403, what
    await nothing_published(relay, sub)
    refusals = [r.getMessage() for r in caplog.records if "refused POST" in r.getMessage()]
    assert len(refusals) == 1
    for fragment in said:
        assert fragment in refusals[0], (what, refusals[0])
    signature = headers.get("X-Twilio-Signature", "")
    for secret in (TOKEN, SECRET, NUMBER, NUMBER.lstrip("+")) + ((signature,) if signature else ()):
        assert secret not in caplog.text


async def test_a_refusal_is_logged_once_per_reason(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.twilio")
    relay = await start(start_relay, auth_token=TOKEN)
    form = webhook_form()
    for _ in range(3):
        assert await post(relay, "/twilio/voice", form, {"X-Twilio-Signature": "forged"}) == 403
        assert await post(relay, "/twilio/voice", form, {}) == 403
    lines = [r.getMessage() for r in caplog.records if "refused POST" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "'forged'" in lines[0] and "no X-Twilio-Signature header" in lines[1]
    assert relay.state.errors["twilio_bad_signature"] == 6


async def test_a_refused_stream_upgrade_logs_both_urls_it_tried_and_what_the_signature_fits(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.twilio")
    relay = await start(start_relay, auth_token=TOKEN)
    # Signed over the https:// form: not what this relay assumes Twilio signs.
    https = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio/stream", {})
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await relay.connect("/twilio/stream", headers={"X-Twilio-Signature": https})
    assert refused.value.status == 403
    line = next(r.getMessage() for r in caplog.records if "refused GET" in r.getMessage())
    assert f"over {STREAM} or wss://jam.example.org:443/twilio/stream" in line
    assert "with no parameters" in line
    assert "it signs https://jam.example.org/twilio/stream instead" in line


async def test_with_shared_keys_only_a_request_without_the_settings_header_is_refused(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await start(start_relay, shared_keys=f"{KEY_ID}:{SECRET}")
    form = webhook_form()
    sha1 = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(VOICE, form)}
    assert await post(relay, "/twilio/voice", form, sha1) == 403
    assert "no X-Twilio-Webhooks-Signature-Settings header" in caplog.text


# -- the stream's status callback --


def status_form(event: str, error: str = "") -> dict[str, str]:
    form = {
        "AccountSid": "AC25e16e9a716a4a1786a7c83f58e30482",
        "CallSid": CALL_SID,
        "StreamSid": STREAM_SID,
        "StreamName": STREAM_SID,
        "StreamEvent": event,
        "Timestamp": "2026-11-30T22:00:00.000Z",
    }
    if error:
        form["StreamError"] = error
    return form


async def post_status(relay: RunningRelay, form: dict[str, str]) -> int:
    signature = RequestValidator(TOKEN).compute_signature(STATUS, form)
    return await post(relay, "/twilio/stream-status", form, {"X-Twilio-Signature": signature})


async def test_a_failed_stream_is_logged_once_with_its_code_and_counted_in_the_metrics(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.twilio")
    relay = await start(start_relay, auth_token=TOKEN)
    assert await post_status(relay, status_form("stream-started")) == 200
    assert await post_status(relay, status_form("stream-stopped")) == 200
    assert "twilio_stream_error" not in relay.state.errors
    failed = status_form("stream-error", "31920 Stream - WebSocket - Handshake Error")
    for _ in range(2):
        assert await post_status(relay, failed) == 200
    lines = [r for r in caplog.records if "failed: error" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert (
        lines[0]
        .getMessage()
        .startswith(
            f"twilio stream {STREAM_SID} of call {CALL_SID} failed: error 31920: 31920 Stream - "
            "WebSocket - Handshake Error"
        )
    )
    assert relay.state.errors["twilio_stream_error"] == 2
    async with relay.session.get(f"{relay.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'dialjam_relay_errors_total{code="twilio_stream_error"} 2.0' in metrics


async def test_a_stream_error_never_logs_a_phone_number_in_its_message(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    form = status_form("stream-error", f"Stream for {NUMBER} failed (31921 Close Error)")
    assert await post_status(relay, form) == 200
    assert "error 31921:" in caplog.text
    for form_of_number in (NUMBER, NUMBER.lstrip("+"), "4155550112"):
        assert form_of_number not in caplog.text


async def test_the_status_callback_is_signed_and_checked_like_a_webhook(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay, auth_token=TOKEN, shared_keys=f"{KEY_ID}:{SECRET}")
    form = status_form("stream-error", "31920 Handshake Error")
    forged = {"X-Twilio-Signature": RequestValidator("x" * 32).compute_signature(STATUS, form)}
    assert await post(relay, "/twilio/stream-status", form, forged) == 403
    assert await post(relay, "/twilio/stream-status", form, sha256_headers(STATUS, form)) == 200
    assert relay.state.errors["twilio_stream_error"] == 1
    assert relay.state.errors["twilio_bad_signature"] == 1
    unknown = status_form("stream-paused")
    assert (
        await post(relay, "/twilio/stream-status", unknown, sha256_headers(STATUS, unknown)) == 400
    )


# -- callers whose number has no digits --


@pytest.mark.parametrize("number", ["anonymous", "client:alice", "+", ""])
async def test_a_caller_without_digits_gets_no_empty_parameter_and_still_joins(
    start_relay: StartRelay, number: str
) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    sub = await subscribe(relay)
    form = webhook_form(number)
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(VOICE, form)}
    async with relay.session.post(f"{relay.url}/twilio/voice", data=form, headers=headers) as resp:
        assert resp.status == 200
        twiml = await resp.text()
    assert 'value=""' not in twiml and "last_digits" not in twiml
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None
    params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    upgrade = RequestValidator(TOKEN).compute_signature(STREAM, {})
    ws = await relay.connect("/twilio/stream", headers={"X-Twilio-Signature": upgrade})
    await send(ws, start_message(params))
    joined = await recv(sub)
    assert joined["event"] == "join" and joined["caller"] == params["caller"]
    assert joined["display"] is None
    await ws.close()
    assert (await recv(sub))["event"] == "leave"
    # The seal covers the absence: a start claiming last digits is refused.
    forged = await relay.connect("/twilio/stream", headers={"X-Twilio-Signature": upgrade})
    await send(forged, start_message({**params, "last_digits": "12"}))

    async def refused() -> bool:
        return relay.state.errors.get("twilio_bad_seal") == 1

    await until(refused)
    await forged.close()
    await nothing_published(relay, sub)
