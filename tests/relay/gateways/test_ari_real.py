"""How the ARI gateway copes with real Asterisk's ways (each one the fake reproduces:
tests/relay/rehearsal/test_fake_ari.py): any app name accepted, a replaced socket kept
silent, a restart that ends every call, events dropped while the socket is down,
playback events, an Asterisk that never returns, and a relay that stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from relay.rehearsal.fake_ari import FakeAri
from tests.support.relay import StartRelay, recv, until

from .ari_calls import digit, joined, left
from .ari_relay import (
    ari_config,
    ari_health,
    call_and_join,
    callers_hung_up,
    other_client,
    start,
)
from .listeners import nothing_published


def watching(fake: FakeAri, app: str) -> Callable[[], Awaitable[bool]]:
    """Whether the relay watches the dialplan (its `app`-check-… socket is open)."""

    async def check() -> bool:
        return any(
            name.startswith(f"{app}-check-") and fake.apps.get(name) is not None
            for name in fake.all_events
        )

    return check


def lost(caller: str | None = None) -> dict[str, str]:
    return {**left(*([caller] if caller else [])), "reason": "lost"}


async def test_a_wrong_app_name_is_connected_but_the_dialplans_app_is_named(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    relay = await start_relay(ari=ari_config(fake, app="dialjamm"))
    await until(watching(fake, "dialjamm"))
    health = await ari_health(relay)
    assert health["status"] == "connected"
    assert health["app_proven"] is False and health["app_mismatch"] is None
    said = [r.getMessage() for r in caplog.records if "connected to ARI" in r.getMessage()]
    assert len(said) == 1 and "Stasis(dialjamm)" in said[0] and "extensions.conf" in said[0]
    await fake.call()  # the dialplan says Stasis(dialjam): the call falls through
    await fake.call()

    async def named() -> bool:
        return (await ari_health(relay))["app_mismatch"] == "dialjam"

    await until(named)
    warned = [r.getMessage() for r in caplog.records if "no ARI client has" in r.getMessage()]
    assert len(warned) == 1  # once per name
    assert "Stasis(dialjam)" in warned[0] and "[ari] app = 'dialjam'" in warned[0]
    assert "extensions.conf say Stasis(dialjamm)" in warned[0]
    assert (await ari_health(relay))["calls_entered"] == 0
    async with relay.session.get(f"{relay.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'dialjam_gateway{figure="app_proven",gateway="ari"} 0.0' in metrics
    assert 'dialjam_gateway_status{gateway="ari",status="connected"} 1.0' in metrics


async def test_a_call_to_an_app_another_client_holds_is_none_of_our_business(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    url, params = other_client(f"http://127.0.0.1:{fake.port}")
    async with aiohttp.ClientSession() as other, other.ws_connect(url, params=params) as ws:
        relay = await start_relay(ari=ari_config(fake, app="lobby-jam"))
        await until(watching(fake, "lobby-jam"))
        await fake.call()  # Stasis(dialjam): the other client's call
        assert (await ws.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT

        async def looked() -> bool:
            return ("GET", "/ari/applications", {}) in fake.requests

        await until(looked)
        assert (await ari_health(relay))["app_mismatch"] is None
    assert not [r for r in caplog.records if "no ARI client has" in r.getMessage()]


async def test_the_first_call_into_the_app_proves_the_dialplan_and_ends_the_watch(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    await until(watching(fake, "dialjam"))
    assert (await ari_health(relay))["app_proven"] is False
    await call_and_join(fake, sub)
    health = await ari_health(relay)
    assert health["app_proven"] is True and health["calls_entered"] == 1

    async def watch_ended() -> bool:
        return all(fake.apps.get(app) is None for app in fake.all_events)

    await until(watch_ended)
    async with relay.session.get(f"{relay.url}/metrics") as resp:
        assert 'dialjam_gateway{figure="app_proven",gateway="ari"} 1.0' in await resp.text()


async def test_when_another_client_takes_the_app_callers_are_lost_and_the_app_is_taken_back(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    url, params = other_client(f"http://127.0.0.1:{fake.port}")
    async with aiohttp.ClientSession() as other, other.ws_connect(url, params=params):
        # We no longer hear the caller, whose call goes on: not a hang-up.
        assert await recv(sub) == lost()
        health = await ari_health(relay)
        assert health["status"] == "replaced" and health["replaced"] == 1
        assert relay.state.errors["ari_replaced"] == 1
    # The other client went: the relay takes the app back, and finds its caller.
    assert await recv(sub) == joined()
    await fake.press(channel_id, "4")
    assert await recv(sub) == digit("4")
    assert (await ari_health(relay))["status"] == "connected"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "ApplicationReplaced" in errors[0]
    assert "give each its own app name" in errors[0]
    assert any("took the Stasis app 'dialjam' back" in r.getMessage() for r in caplog.records)


async def test_a_restarted_asterisk_ended_every_call_so_its_callers_leave(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    relay, sub = await start(start_relay, fake)
    await call_and_join(fake, sub)
    port = fake.port
    await fake.close()

    async def unreachable() -> bool:
        return relay.state.errors.get("ari_unreachable", 0) >= 2

    await until(unreachable)
    assert (await ari_health(relay))["status"] == "reconnecting"
    await fake.start(port=port)
    await fake.wait_clients(2)
    assert await recv(sub) == left()  # the call ended: a hang-up
    channel_id, _ = await call_and_join(fake, sub, "+15550000005")
    await fake.press(channel_id, "8")
    assert (await recv(sub))["digit"] == "8"
    warnings = [r for r in caplog.records if "cannot reach" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per attempt


async def test_a_key_pressed_while_the_socket_is_down_is_lost_and_the_caller_plays_on(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    await fake.drop()
    await fake.press(channel_id, "1")  # Asterisk drops it: nobody holds the app
    await fake.wait_clients(2)
    await fake.press(channel_id, "2")
    assert await recv(sub) == digit("2")  # no second join, no invented "1"
    await nothing_published(relay, sub)


async def test_a_prompt_asterisk_cannot_play_is_reported_once_with_what_to_do(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    fake.sounds = frozenset()  # an Asterisk without its sound files
    relay, sub = await start(start_relay, fake)
    await call_and_join(fake, sub)
    await call_and_join(fake, sub, "+15550000002")

    async def both_reported() -> bool:
        return relay.state.errors.get("ari_playback_failed", 0) == 2

    await until(both_reported)
    said = [r for r in caplog.records if "could not play" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "sound:beep" in said[0].getMessage()
    assert "[ari] prompt" in said[0].getMessage() and "sound files" in said[0].getMessage()


async def test_state_changes_and_playbacks_that_went_well_are_quiet(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    relay, sub = await start(start_relay, fake)
    await call_and_join(fake, sub)

    async def played() -> bool:
        return any(m == "POST" and p.endswith("/play") for m, p, _ in fake.requests)

    await until(played)
    await nothing_published(relay, sub)  # by now the playback events have come
    assert not [code for code in relay.state.errors if code.startswith("ari_")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_callers_of_an_asterisk_that_never_returns_leave_as_lost(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    relay, sub = await start(start_relay, fake, lost_after_s=0.3)
    await call_and_join(fake, sub)
    await fake.close()  # and it never comes back
    assert await recv(sub) == lost()
    assert (await ari_health(relay))["callers"] == 0
    assert relay.state.errors["ari_lost_callers"] == 1
    said = [r.getMessage() for r in caplog.records if "lost_after_s" in r.getMessage()]
    assert len(said) == 1
    await nothing_published(relay, sub)


async def test_a_short_loss_of_asterisk_loses_nobody(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    _, sub = await start(start_relay, fake, lost_after_s=60.0)
    channel_id, _ = await call_and_join(fake, sub)
    await fake.drop()
    await fake.wait_clients(2)
    await fake.press(channel_id, "7")
    assert await recv(sub) == digit("7")


async def test_a_stopping_relay_hangs_up_its_calls(start_relay: StartRelay, fake: FakeAri) -> None:
    relay, sub = await start(start_relay, fake)
    a, _ = await call_and_join(fake, sub)
    b, _ = await call_and_join(fake, sub, "+15550000002")
    await relay.runner.cleanup()
    assert callers_hung_up(fake) == {a: "normal", b: "normal"}
    assert not fake.channels  # their phone music's channels too
    assert not fake.media.bridges


async def test_a_stopping_relay_does_not_wait_long_for_an_asterisk_that_does_not_answer(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    await call_and_join(fake, sub)
    await fake.close()  # gone; the relay does not know yet
    async with asyncio.timeout(15):  # REST_TIMEOUT_S and HANG_UP_ON_STOP_S bound it
        await relay.runner.cleanup()


async def test_two_relays_with_one_app_take_it_from_each_other_slowly_saying_so_once(
    start_relay: StartRelay, fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ari")
    first = await start_relay(ari=ari_config(fake))
    await fake.wait_clients(1)
    second = await start_relay(ari=ari_config(fake))

    async def fought() -> bool:
        errors = (first.state.errors, second.state.errors)
        return all(e.get("ari_replaced", 0) >= 2 for e in errors)

    await until(fought)
    said = [r for r in caplog.records if "ApplicationReplaced" in r.getMessage()]
    assert len(said) == 2  # one line from each relay, however long they go on
