"""The Twilio gateway against a real relay on a free port, with real aiohttp clients in
the shapes Twilio documents (the voice webhook's parameters; the Media Streams
messages ``connected``, ``start``, ``media``, ``dtmf``, ``stop`` of
https://www.twilio.com/docs/voice/media-streams/websocket-messages), signatures
cross-checked with twilio-python's RequestValidator.

Why this module is long: it is the one list of what the Twilio door promises, read
top to bottom: a whole call, the webhook's TwiML, signatures, bad input, in-band DTMF,
privacy and configuration. Every part drives the same recorded call through the same
helpers (the webhook form, the stream's messages, a subscriber); split by part, each
piece would import those helpers back and a reader would lose the one list.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from relay.config import ConfigError, RelayConfig, TwilioConfig, load_installation
from relay.contract.errors import PeerError
from relay.contract.privacy import pseudonym
from relay.gateways.dtmf import dtmf_tone, ulaw_encode
from relay.gateways.twilio import (
    TWILIO,
    TwilioStream,
    compute_signature,
    connect_twiml,
    seal,
    signature_ok,
    url_variants,
)
from relay.runtime import announce
from tests.support.relay import RunningRelay, StartRelay, recv, send, until
from tests.support.twilio import (
    ACCOUNT_SID,
    CALL_SID,
    KEY,
    NUMBER,
    PUBLIC,
    STREAM_SID,
    TOKEN,
    start_message,
    webhook_form,
)

from .listeners import (
    END_CALLS,
    billboard_says,
    kick,
    nothing_published,
    operator_says,
    subscribe,
)

SILENCE = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of μ-law silence


async def start(start_relay: StartRelay, **twilio: Any) -> RunningRelay:
    return await start_relay(public_url=PUBLIC, pseudonym_key=KEY, twilio=TwilioConfig(**twilio))


async def post_voice(
    relay: RunningRelay,
    form: dict[str, str],
    signature: str | None = None,
    path: str = "/twilio/voice",
) -> aiohttp.ClientResponse:
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    async with relay.session.post(f"{relay.url}{path}", data=form, headers=headers) as resp:
        await resp.read()
        return resp


async def dial(relay: RunningRelay, form: dict[str, str] | None = None) -> dict[str, Any]:
    """The voice webhook as Twilio calls it (signed when the relay has a token); returns
    the TwiML's Stream url and Parameters."""
    form = form or webhook_form()
    token = _token(relay)
    headers = {}
    if token:
        signature = RequestValidator(token).compute_signature(f"{PUBLIC}/twilio/voice", form)
        headers["X-Twilio-Signature"] = signature
    async with relay.session.post(f"{relay.url}/twilio/voice", data=form, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/xml"
        root = ET.fromstring(await resp.read())
    stream = root.find("./Connect/Stream")
    assert stream is not None
    params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    return {"url": stream.attrib["url"], "params": params, "root": root}


def _token(relay: RunningRelay) -> str:
    return relay.app[TWILIO].config.auth_token


async def open_stream(
    relay: RunningRelay, signature: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    token = _token(relay)
    if signature is None and token:
        signature = RequestValidator(token).compute_signature(
            "wss://jam.example.org/twilio/stream", {}
        )
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    return await relay.connect("/twilio/stream", headers=headers)


def connected() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def media(n: int) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(n + 2),
        "media": {
            "track": "inbound",
            "chunk": str(n + 1),
            "timestamp": str(20 * n),
            "payload": SILENCE,
        },
        "streamSid": STREAM_SID,
    }


def dtmf(digit: str, seq: int) -> dict[str, Any]:
    return {
        "event": "dtmf",
        "streamSid": STREAM_SID,
        "sequenceNumber": str(seq),
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def stop(seq: int) -> dict[str, Any]:
    return {
        "event": "stop",
        "sequenceNumber": str(seq),
        "streamSid": STREAM_SID,
        "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
    }


# -- a whole call --


async def test_a_recorded_twilio_session_becomes_join_three_digits_and_leave(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    sub = await subscribe(relay)
    answer = await dial(relay)
    ws = await open_stream(relay)
    session = [connected(), start_message(answer["params"])]
    session += [media(n) for n in range(25)]
    session += [dtmf("1", 28), dtmf("5", 29)]
    session += [{"event": "mark", "streamSid": STREAM_SID, "mark": {"name": "greeting"}}]
    session += [dtmf("#", 31), stop(32)]
    for message in session:
        await send(ws, message)
    caller = pseudonym(NUMBER, KEY.encode())
    assert caller.startswith("c-")
    assert [await recv(sub) for _ in range(5)] == [
        {"event": "join", "caller": caller, "source": "twilio", "display": "…12", "nick": None},
        {"event": "digit", "caller": caller, "digit": "1", "source": "twilio"},
        {"event": "digit", "caller": caller, "digit": "5", "source": "twilio"},
        {"event": "digit", "caller": caller, "digit": "#", "source": "twilio"},
        {"event": "leave", "caller": caller, "reason": "hangup"},
    ]
    await ws.close()
    await nothing_published(relay, sub)  # closing after stop: no second leave
    assert not any(code.startswith("twilio") for code in relay.state.errors)


async def test_a_stream_closed_without_stop_still_sends_leave(start_relay: StartRelay) -> None:
    relay = await start(start_relay)
    sub = await subscribe(relay)
    answer = await dial(relay)
    ws = await open_stream(relay)
    await send(ws, connected())
    await send(ws, start_message(answer["params"]))
    await send(ws, dtmf("9", 3))
    assert (await recv(sub))["event"] == "join"
    assert (await recv(sub))["digit"] == "9"
    await ws.close()
    assert await recv(sub) == {
        "event": "leave",
        "caller": answer["params"]["caller"],
        "reason": "hangup",
    }


async def test_the_events_go_to_the_configured_channel(start_relay: StartRelay) -> None:
    relay = await start(start_relay, channel="tower-b")
    sub = await subscribe(relay, "tower-b")
    answer = await dial(relay)
    assert answer["params"]["channel"] == "tower-b"
    ws = await open_stream(relay)
    await send(ws, start_message(answer["params"]))
    assert (await recv(sub))["event"] == "join"
    await ws.close()


# -- a kick ends the call (relay/gateways/kicks.py) --


async def test_a_kicked_twilio_caller_s_stream_is_closed_so_the_call_ends(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    sub = await subscribe(relay)
    twiml = await dial(relay)
    # Nothing after <Connect>: when the stream closes, Twilio ends the call.
    assert [child.tag for child in twiml["root"]][-1] == "Connect"
    stream = await open_stream(relay)
    await send(stream, connected())
    await send(stream, start_message(twiml["params"]))
    join = await recv(sub)
    caller = pseudonym(NUMBER.lstrip("+"), KEY.encode())
    assert join["caller"] == caller
    await billboard_says(relay, "dialjam", kick(caller))
    msg = await stream.receive(timeout=10)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert stream.close_code == 1000
    await nothing_published(relay, sub)  # no leave: the billboard said "kicked"


async def test_the_operators_end_calls_closes_every_twilio_stream_and_each_caller_leaves(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    sub = await subscribe(relay)
    streams, callers = [], set()
    for number, call_sid in ((NUMBER, CALL_SID), ("+14155550177", "CA" + "7" * 32)):
        twiml = await dial(relay, webhook_form(number, call_sid))
        stream = await open_stream(relay)
        await send(stream, connected())
        await send(stream, start_message(twiml["params"], call_sid))
        join = await recv(sub)
        assert join["event"] == "join"
        streams.append(stream)
        callers.add(join["caller"])
    # Each stream is read meanwhile, as Twilio reads it (and answers our close at once).
    closes = [asyncio.create_task(stream.receive(timeout=10)) for stream in streams]
    await operator_says(relay, "dialjam", END_CALLS)
    leaves = [await recv(sub), await recv(sub)]
    assert {(e["event"], e["caller"], e["reason"]) for e in leaves} == {
        ("leave", caller, "hangup") for caller in callers
    }
    for stream, close in zip(streams, closes, strict=True):  # closed by us: each call ends
        assert (await close).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert stream.close_code == 1000
    await nothing_published(relay, sub)  # each caller left once
    assert relay.app[TWILIO].streams == {}


def test_a_kicked_twilio_stream_hears_no_more_keys_and_gives_no_leave() -> None:
    core = TwilioStream(b"seal key", inband=False)
    params = {"channel": "dialjam", "caller": "c-abcdefghij", "last_digits": "12"}
    params["seal"] = seal(b"seal key", CALL_SID, "dialjam", "c-abcdefghij", "12")
    assert [e.data["event"] for e in core.receive(orjson.dumps(start_message(params)), 0.0)] == [
        "join"
    ]
    core.kicked()
    with pytest.raises(PeerError):  # a key Twilio sent before it saw the close
        core.receive(orjson.dumps(dtmf("3", 3)), 0.1)
    assert core.hang_up() == []


# -- the voice webhook's TwiML --


async def test_the_voice_webhook_answers_twiml_that_connects_a_stream_with_the_callers_parameters(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay, greeting="Hello, jam!")
    answer = await dial(relay)
    root = answer["root"]
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Say", "Connect"]
    assert root.find("Say").text == "Hello, jam!"
    assert answer["url"] == "wss://jam.example.org/twilio/stream"
    params = answer["params"]
    assert params["channel"] == "dialjam"
    assert params["caller"] == pseudonym(NUMBER, KEY.encode())
    assert params["last_digits"] == "12"
    assert set(params) == {"channel", "caller", "last_digits", "seal"}
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.attrib["statusCallback"] == "https://jam.example.org/twilio/stream-status"
    assert stream.attrib["statusCallbackMethod"] == "POST"


async def test_the_stream_url_follows_the_public_url_scheme_and_path(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(public_url="http://10.0.0.5:8080/jam/", twilio=TwilioConfig())
    async with relay.session.post(f"{relay.url}/twilio/voice", data=webhook_form()) as resp:
        root = ET.fromstring(await resp.read())
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.attrib["url"] == "ws://10.0.0.5:8080/jam/twilio/stream"


def test_a_greeting_with_markup_stays_text_in_valid_twiml() -> None:
    twiml = connect_twiml(
        'wss://x.org/twilio/stream?a=1&b="2"',
        "Press <1> & 'play'",
        {"caller": 'c-"&<>'},
    )
    root = ET.fromstring(twiml)
    say = root.find("Say")
    assert say is not None and say.text == "Press <1> & 'play'"
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.attrib["url"] == 'wss://x.org/twilio/stream?a=1&b="2"'
    param = stream.find("Parameter")
    assert param is not None and param.attrib == {"name": "caller", "value": 'c-"&<>'}


async def test_an_empty_greeting_says_nothing(start_relay: StartRelay) -> None:
    relay = await start(start_relay, greeting="")
    answer = await dial(relay)
    assert [child.tag for child in answer["root"]] == ["Connect"]


async def test_callers_without_a_number_get_a_pseudonym_of_their_own_call_even_if_sids_share_digits(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    sub = await subscribe(relay)
    first = await dial(relay, webhook_form("anonymous", "CA" + "a1" * 16))
    second = await dial(relay, webhook_form("anonymous", "CA" + "b1" * 16))
    assert first["params"]["caller"] != second["params"]["caller"]
    # No digits, no last_digits: Twilio keeps no empty <Parameter>, and the stream
    # needs none (the seal covers its absence).
    assert "last_digits" not in first["params"]
    assert all(value for value in first["params"].values())
    ws = await open_stream(relay)
    await send(ws, start_message(first["params"], "CA" + "a1" * 16))
    joined = await recv(sub)
    assert joined["caller"] == first["params"]["caller"] and joined["display"] is None
    await ws.close()


async def test_a_webhook_without_a_call_sid_is_a_bad_request(start_relay: StartRelay) -> None:
    relay = await start(start_relay)
    form = webhook_form()
    del form["CallSid"]
    resp = await post_voice(relay, form)
    assert resp.status == 400


# -- signatures --


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("https://jam.example.org/twilio/voice", webhook_form()),
        ("https://jam.example.org:443/twilio/voice?x=1&y=é", webhook_form("+33 6 12 34 56 78")),
        ("wss://jam.example.org/twilio/stream", {}),
        ("http://10.0.0.5:8080/twilio/voice", {"b": "2", "a": "1", "B": "0", "Digits": "#*"}),
    ],
)
def test_our_signature_agrees_with_twilios_request_validator(
    url: str, params: dict[str, str]
) -> None:
    expected = RequestValidator(TOKEN).compute_signature(url, params)
    assert compute_signature(TOKEN, url, params.items()) == expected
    assert signature_ok(TOKEN, url, params.items(), expected)
    assert not signature_ok("another-token", url, params.items(), expected)


def test_repeated_parameters_are_signed_as_twilio_python_does() -> None:
    from multidict import MultiDict

    params = MultiDict([("Digits", "2"), ("a", "x"), ("Digits", "1"), ("Digits", "2")])
    url = "https://jam.example.org/twilio/voice"
    expected = RequestValidator(TOKEN).compute_signature(url, params)
    assert compute_signature(TOKEN, url, params.items()) == expected


def test_a_url_is_also_tried_with_and_without_its_default_port() -> None:
    assert url_variants("https://a.org/v?x=1") == ["https://a.org/v?x=1", "https://a.org:443/v?x=1"]
    assert url_variants("wss://a.org:443/s") == ["wss://a.org:443/s", "wss://a.org/s"]
    assert url_variants("http://a.org/v") == ["http://a.org/v", "http://a.org:80/v"]
    assert url_variants("http://a.org:8080/v") == ["http://a.org:8080/v"]
    validator = RequestValidator(TOKEN)
    for signed in ("https://a.org:443/v", "https://a.org/v"):
        signature = validator.compute_signature(signed, {"From": NUMBER})
        for url in ("https://a.org/v", "https://a.org:443/v"):
            assert signature_ok(TOKEN, url, [("From", NUMBER)], signature)
            assert validator.validate(url, {"From": NUMBER}, signature)


@pytest.mark.parametrize(
    "signed_url",
    ["https://jam.example.org/twilio/voice", "https://jam.example.org:443/twilio/voice"],
)
async def test_a_webhook_signed_by_twilio_is_answered(
    start_relay: StartRelay, signed_url: str
) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    form = webhook_form()
    signature = RequestValidator(TOKEN).compute_signature(signed_url, form)
    assert RequestValidator(TOKEN).validate(f"{PUBLIC}/twilio/voice", form, signature)
    resp = await post_voice(relay, form, signature)
    assert resp.status == 200


async def test_a_webhook_with_a_query_is_signed_over_it(start_relay: StartRelay) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    form = webhook_form()
    path = "/twilio/voice?venue=tower%20b"
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, form)
    assert (await post_voice(relay, form, signature, path)).status == 200
    plain = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio/voice", form)
    assert (await post_voice(relay, form, plain, path)).status == 403


def _tampered_webhooks() -> list[tuple[str, dict[str, str], str | None]]:
    """(what, form sent, signature) where the signature does not fit what was sent."""
    validator = RequestValidator(TOKEN)
    form = webhook_form()
    good = validator.compute_signature(f"{PUBLIC}/twilio/voice", form)
    return [
        ("a changed From", {**form, "From": "+14155550199"}, good),
        ("an added parameter", {**form, "Digits": "5"}, good),
        ("a dropped parameter", {k: v for k, v in form.items() if k != "Direction"}, good),
        (
            "the relay's own http URL",
            form,
            validator.compute_signature("http://127.0.0.1/twilio/voice", form),
        ),
        (
            "another host",
            form,
            validator.compute_signature("https://evil.example.org/twilio/voice", form),
        ),
        ("another path", form, validator.compute_signature(f"{PUBLIC}/twilio/other", form)),
        (
            "another token",
            form,
            RequestValidator("x" * 32).compute_signature(f"{PUBLIC}/twilio/voice", form),
        ),
        ("no signature", form, None),
        ("an empty signature", form, ""),
    ]


@pytest.mark.parametrize(
    ("what", "form", "signature"), _tampered_webhooks(), ids=[t[0] for t in _tampered_webhooks()]
)
async def test_a_tampered_webhook_is_refused_with_403_and_no_event(
    start_relay: StartRelay, what: str, form: dict[str, str], signature: str | None
) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    sub = await subscribe(relay)
    resp = await post_voice(relay, form, signature)
    assert resp.status == 403, what
    assert relay.state.errors.get("twilio_bad_signature") == 1
    await nothing_published(relay, sub)


async def test_a_stream_upgrade_signed_over_the_wss_url_is_accepted(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    validator = RequestValidator(TOKEN)
    for url in ("wss://jam.example.org/twilio/stream", "wss://jam.example.org:443/twilio/stream"):
        ws = await open_stream(relay, validator.compute_signature(url, {}))
        await ws.close()


@pytest.mark.parametrize(
    ("what", "signature"),
    [
        ("the https URL", RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio/stream", {})),
        (
            "the ws URL",
            RequestValidator(TOKEN).compute_signature("ws://jam.example.org/twilio/stream", {}),
        ),
        (
            "another path",
            RequestValidator(TOKEN).compute_signature("wss://jam.example.org/twilio/voice", {}),
        ),
        (
            "another token",
            RequestValidator("y" * 32).compute_signature("wss://jam.example.org/twilio/stream", {}),
        ),
        ("no signature", None),
    ],
    ids=["https URL", "ws URL", "another path", "another token", "no signature"],
)
async def test_a_bad_stream_upgrade_is_refused_with_403_and_no_event(
    start_relay: StartRelay, what: str, signature: str | None
) -> None:
    relay = await start(start_relay, auth_token=TOKEN)
    sub = await subscribe(relay)
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await relay.connect("/twilio/stream", headers=headers)
    assert refused.value.status == 403, what
    await nothing_published(relay, sub)


# -- bad input --


async def test_bad_messages_do_not_crash_the_stream_and_later_good_ones_still_work(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await start(start_relay)
    sub = await subscribe(relay)
    answer = await dial(relay)
    params = answer["params"]
    ws = await open_stream(relay)
    caplog.set_level(logging.INFO, logger="relay.twilio")
    await ws.send_str("not json {")
    await ws.send_str("[1, 2]")
    await send(ws, {"no": "event"})
    await send(ws, {"event": "dance"})
    await send(ws, dtmf("1", 2))  # before start
    await send(ws, media(0))  # before start
    await send(ws, {"event": "start", "start": {"callSid": CALL_SID}})
    await send(ws, start_message({**params, "channel": "dialjam:control"}))  # not our seal
    await send(ws, start_message({**params, "caller": "c-0000000000"}))
    await ws.send_bytes(b"\x00\x01")
    await send(ws, start_message(params))
    await send(ws, dtmf("X", 3))
    await send(ws, dtmf("55", 4))
    await send(ws, {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": 5}})
    await send(ws, {"event": "dtmf"})
    await send(ws, {**media(1), "media": {"payload": "%%% not base64"}})
    await send(ws, {"event": "not json either"})
    await send(ws, start_message(params))  # a second start
    await send(ws, media(2))
    await send(ws, dtmf("A", 5))
    await send(ws, stop(6))
    await send(ws, dtmf("2", 7))  # after stop
    caller = params["caller"]
    assert [await recv(sub) for _ in range(3)] == [
        {"event": "join", "caller": caller, "source": "twilio", "display": "…12", "nick": None},
        {"event": "digit", "caller": caller, "digit": "A", "source": "twilio"},
        {"event": "leave", "caller": caller, "reason": "hangup"},
    ]
    await ws.close()
    await nothing_published(relay, sub)
    errors = relay.state.errors
    assert errors["twilio_bad_json"] == 2
    assert errors["twilio_unknown_event"] == 2
    assert errors["twilio_no_start"] == 2
    assert errors["twilio_bad_seal"] == 2
    assert errors["twilio_bad_digit"] == 2
    assert errors["twilio_bad_field"] == 5
    assert errors["twilio_binary"] == 1
    assert errors["twilio_second_start"] == 1
    assert errors["twilio_after_stop"] == 1
    ignored = [r for r in caplog.records if "ignored a message" in r.getMessage()]
    assert len(ignored) == 9  # once per stream and kind of mistake
    health = await relay.healthz()
    assert health["status"] != "shutting_down" and health["errors"]["twilio_bad_json"] == 2


async def test_a_stream_message_over_64_kib_closes_the_stream_and_is_counted(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    ws = await open_stream(relay)
    await ws.send_str('{"event":"media","pad":"' + "x" * 70_000 + '"}')
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1009
    await until(lambda: _count(relay, "twilio_too_large", 1))


async def _count(relay: RunningRelay, code: str, n: int) -> bool:
    return relay.state.errors.get(code) == n


async def test_a_forged_start_without_our_seal_publishes_nothing(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    sub = await subscribe(relay, "dialjam:control")
    ws = await open_stream(relay)
    forged = {"channel": "dialjam:control", "caller": "c-0123456789", "last_digits": "12"}
    await send(ws, start_message({**forged, "seal": "0" * 32}))
    await send(ws, start_message(forged))
    await send(ws, dtmf("1", 2))
    await ws.close()

    async def refused() -> bool:
        return relay.state.errors.get("twilio_no_start", 0) == 1

    await until(refused)
    assert relay.state.errors["twilio_bad_seal"] == 1
    assert relay.state.errors["twilio_bad_field"] == 1
    assert relay.state.hub.stats.published == 0
    await sub.close()


# -- in-band DTMF --


def audio_frames(keys: str, tone_ms: float = 80, gap_ms: float = 80) -> list[bytes]:
    """A caller's inbound audio as Twilio delivers it: 20 ms μ-law frames, each key
    a tone of `tone_ms` and a pause of `gap_ms` (160 bytes a frame)."""
    pcm = np.concatenate(
        [np.zeros(160)]
        + [np.concatenate((dtmf_tone(k, tone_ms), np.zeros(round(gap_ms * 8)))) for k in keys]
    )
    pcm = np.concatenate((pcm, np.zeros(-len(pcm) % 160)))
    ulaw = ulaw_encode(pcm)
    return [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]


def media_of(n: int, ulaw: bytes, track: str = "inbound") -> dict[str, Any]:
    message = media(n)
    payload = base64.b64encode(ulaw).decode()
    message["media"] = {**message["media"], "payload": payload, "track": track}
    return message


async def digits_until_leave(sub: aiohttp.ClientWebSocketResponse) -> list[str]:
    events = []
    while not events or events[-1]["event"] != "leave":
        events.append(await recv(sub))
    assert events[0]["event"] == "join"
    return [e["digit"] for e in events if e["event"] == "digit"]


async def test_keys_that_reach_twilio_only_as_tones_are_heard_in_the_audio(
    start_relay: StartRelay,
) -> None:
    relay = await start(start_relay)
    sub = await subscribe(relay)
    answer = await dial(relay)
    ws = await open_stream(relay)
    await send(ws, start_message(answer["params"]))
    for n, frame in enumerate(audio_frames("159#*0D")):
        await send(ws, media_of(n, frame))
    await send(ws, stop(999))
    assert await digits_until_leave(sub) == list("159#*0D")
    await ws.close()


def test_a_press_reported_as_a_dtmf_message_and_as_a_tone_counts_once() -> None:
    core = TwilioStream(seal_key=b"k" * 32)
    params = {"channel": "dialjam", "caller": "c-1", "last_digits": "12"}
    params["seal"] = seal(b"k" * 32, CALL_SID, "dialjam", "c-1", "12")
    assert len(core.receive(orjson.dumps(start_message(params)), 0.0)) == 1
    heard: list[str] = []
    now = 0.0
    # "55" then "8", each a 100 ms tone (frames 1-5, 9-13, 17-21). Twilio's dtmf
    # message usually comes when the key is released, after the detector has heard
    # the tone; the first one here overtakes its tone (sent at frame 1, the tone is
    # confirmed at frame 2).
    frames = audio_frames("558", tone_ms=100, gap_ms=60)
    messages = {1: "5", 14: "5", 22: "8"}  # frame index → a dtmf message after it
    for n, frame in enumerate(frames):
        now = 0.02 * n
        for out in core.receive(orjson.dumps(media_of(n, frame)), now):
            heard.append(out.data["digit"])
        if n in messages:
            for out in core.receive(orjson.dumps(dtmf(messages[n], 100 + n)), now):
                heard.append(out.data["digit"])
    assert heard == ["5", "5", "8"]
    assert core.presses.merged == 3


def test_a_dtmf_message_without_a_tone_and_a_tone_without_a_message_both_count() -> None:
    core = TwilioStream(seal_key=b"k" * 32)
    params = {"channel": "dialjam", "caller": "c-1", "last_digits": "12"}
    params["seal"] = seal(b"k" * 32, CALL_SID, "dialjam", "c-1", "12")
    core.receive(orjson.dumps(start_message(params)), 0.0)
    heard = [out.data["digit"] for out in core.receive(orjson.dumps(dtmf("3", 5)), 0.0)]
    for n, frame in enumerate(audio_frames("3")):
        heard += [out.data["digit"] for out in core.receive(orjson.dumps(media_of(n, frame)), 5.0)]
    assert heard == ["3", "3"]  # seconds apart: two presses


async def test_tones_on_the_outbound_track_or_with_inband_dtmf_off_are_not_keys(
    start_relay: StartRelay,
) -> None:
    for relay, track in (
        (await start(start_relay), "outbound"),
        (await start(start_relay, inband_dtmf=False), "inbound"),
    ):
        sub = await subscribe(relay)
        answer = await dial(relay)
        ws = await open_stream(relay)
        await send(ws, start_message(answer["params"]))
        for n, frame in enumerate(audio_frames("123")):
            await send(ws, media_of(n, frame, track))
        await send(ws, dtmf("9", 500))
        await send(ws, stop(999))
        assert await digits_until_leave(sub) == ["9"]
        await ws.close()


async def test_shutdown_closes_every_stream_with_going_away(start_relay: StartRelay) -> None:
    relay = await start(start_relay)
    answer = await dial(relay)
    ws = await open_stream(relay)
    await send(ws, start_message(answer["params"]))

    async def streaming() -> bool:  # the stream shows in /healthz with the relay's sockets
        return bool((await relay.healthz())["websockets"].get("twilio") == 1)

    await until(streaming)
    cleanup = asyncio.create_task(relay.runner.cleanup())
    msg = await ws.receive(timeout=3)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
    await ws.close()
    await cleanup


# -- privacy --


async def test_the_full_number_never_reaches_logs_or_events(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    relay = await start(start_relay, auth_token=TOKEN)
    sub = await subscribe(relay)
    answer = await dial(relay)
    assert NUMBER not in ET.tostring(answer["root"], encoding="unicode")
    ws = await open_stream(relay)
    await send(ws, start_message(answer["params"]))
    await send(ws, {"event": "bogus"})
    await send(ws, dtmf("3", 3))
    await send(ws, stop(4))
    events = [await recv(sub) for _ in range(3)]
    await ws.close()
    await post_voice(relay, webhook_form(), "forged")  # a refused one is logged too
    text = caplog.text + repr(events)
    assert caplog.records
    for form in (NUMBER, NUMBER.lstrip("+"), "4155550112", "5550112"):
        assert form not in text


# -- configuration and start --


async def test_without_an_auth_token_the_relay_warns_that_anyone_can_pose_as_twilio(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.twilio")
    await start(start_relay)
    assert "anyone can pose as Twilio" in caplog.text
    lines: list[str] = []
    config = RelayConfig(public_url=PUBLIC)
    announce(config, [], lines.append, TwilioConfig())
    text = "\n".join(lines)
    assert "voice webhook https://jam.example.org/twilio/voice" in text
    assert "anyone can pose as Twilio" in text
    lines.clear()
    announce(config, [], lines.append, TwilioConfig(auth_token=TOKEN))
    assert "anyone can pose" not in "\n".join(lines) and TOKEN not in "\n".join(lines)
    lines.clear()
    announce(config, [], lines.append)
    assert "twilio" not in "\n".join(lines).lower()


async def test_without_the_gateway_its_paths_are_not_served(start_relay: StartRelay) -> None:
    relay = await start_relay()
    resp = await post_voice(relay, webhook_form())
    assert resp.status in (404, 405)
    assert TWILIO not in relay.app


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dialjam.toml"
    path.write_text(text)
    return path


def load_twilio_config(path: Path | None, env: dict[str, str]) -> TwilioConfig | None:
    return load_installation(path, env).twilio


def test_the_twilio_table_turns_the_gateway_on(tmp_path: Path) -> None:
    assert load_twilio_config(_write(tmp_path, "[relay]\nport = 9000\n"), env={}) is None
    assert load_twilio_config(None, env={}) is None
    https = '[relay]\npublic_url = "https://jam.example.org"\n'
    assert load_twilio_config(_write(tmp_path, https + "[twilio]\n"), env={}) == TwilioConfig()
    path = _write(
        tmp_path,
        '[relay]\npseudonym_key = "k"\npublic_url = "https://jam.example.org/"\n'
        '[twilio]\nauth_token = "t"\ngreeting = "Hi"\nchannel = "x"\n',
    )
    assert load_twilio_config(path, env={}) == TwilioConfig(
        auth_token="t", greeting="Hi", channel="x"
    )
    assert load_installation(path, env={}).relay.pseudonym_key == "k"  # one for every door
    assert load_twilio_config(None, env={"DIALJAM_CONFIG": str(path)}) is not None
    off = _write(tmp_path, '[twilio]\nenabled = false\nauth_token = "t"\n')
    assert load_twilio_config(off, env={}) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[twilio]\nauth_tokn = 'x'\n", "no setting 'auth_tokn'"),
        ("[twilio]\npseudonym_key = 'k'\n", "one pseudonym_key, in \\[relay\\]"),
        ("[twilio]\nauth_token = 5\n", "auth_token must be a string"),
        ("[twilio]\nchannel = 'dialjam:control'\n", "channel"),
        ("[twilio]\nchannel = 'a b'\n", "channel"),
        ("twilio = 3\n", "must be a table"),
    ],
)
def test_a_wrong_twilio_setting_is_named(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_twilio_config(_write(tmp_path, text), env={})
