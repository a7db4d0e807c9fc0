"""Every gateway hangs up whom the operator kicks (relay/gateways/kicks.py): the
billboard's ``leave`` ``kicked`` on NAME:callers ends the caller's call — here ARI's
(the channel is deleted); Twilio's (the stream is closed, so the call ends) is in
test_twilio.py — their keys stop, and after the ban a key cannot bring them back. The
operator's ``end_calls`` on NAME:control ends every call the same way (SIP's in
test_sip_kicks.py), each caller leaving with ``hangup``."""

from __future__ import annotations

import logging

import pytest

from relay.fanout import FanOut
from relay.gateways.kicks import KickWatcher, ends_calls, kicked_caller
from relay.rehearsal.fake_ari import FakeAri
from tests.support.relay import StartRelay, recv, until

from .ari_calls import CALLER, digit
from .ari_relay import (
    ari_health,
    call_and_join,
    caller_deletes,
    callers_hung_up,
    music_gone,
    music_of,
    start,
)
from .listeners import END_CALLS, billboard_says, kick, nothing_published, operator_says


@pytest.mark.parametrize(
    ("data", "caller"),
    [
        (kick("c-abcdefghij"), "c-abcdefghij"),
        ({"event": "leave", "caller": "c-abcdefghij", "reason": "kicked"}, "c-abcdefghij"),
        ({"event": "leave", "caller": "c-abcdefghij", "reason": "turn"}, None),
        ({"event": "leave", "caller": "c-abcdefghij", "reason": "idle"}, None),
        ({"event": "assign", "caller": "c-abcdefghij", "track": None, "color": None}, None),
        ({"event": "leave", "caller": "+14155550112", "reason": "kicked"}, None),
        ({"event": "digest"}, None),
        ("kicked", None),
        (None, None),
    ],
)
def test_only_a_kick_names_a_caller_to_hang_up(data: object, caller: str | None) -> None:
    assert kicked_caller(data) == caller


@pytest.mark.parametrize(
    ("data", "ends"),
    [
        (END_CALLS, True),
        ({"event": "command", "name": "end_calls"}, True),
        ({"event": "command", "name": "end_calls", "args": None}, True),
        ({"event": "command", "name": "end_calls", "args": []}, False),
        ({"event": "command", "name": "panic", "args": {}}, False),
        ({"event": "command", "name": "END_CALLS", "args": {}}, False),
        ({"event": "leave", "name": "end_calls"}, False),
        ({"name": "end_calls"}, False),
        ("end_calls", False),
        (None, False),
    ],
)
def test_only_the_operators_end_calls_command_ends_every_call(data: object, ends: bool) -> None:
    assert ends_calls(data) is ends


async def test_the_operators_end_calls_hangs_up_every_ari_call_and_new_calls_still_play(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    first_id, first = await call_and_join(fake, sub)
    second_id, second = await call_and_join(fake, sub, "+15550000002")
    unheard = fake.add_channel("+15550000009")  # in the app, though we never heard of it
    await operator_says(relay, "dialjam", END_CALLS)
    leaves = [await recv(sub), await recv(sub)]
    assert {(e["event"], e["caller"], e["reason"]) for e in leaves} == {
        ("leave", first["caller"], "hangup"),
        ("leave", second["caller"], "hangup"),
    }
    for channel_id in (first_id, second_id, unheard):
        await fake.ended(channel_id)
    callers = {first_id, second_id, unheard}
    assert callers_hung_up(fake) == dict.fromkeys(callers, "normal")
    await until(music_gone(fake))  # and each caller's phone music went with them
    await nothing_published(relay, sub)  # their StasisEnds give no second leave
    assert (await ari_health(relay))["callers"] == 0
    third_id, _ = await call_and_join(fake, sub, "+15550000003")
    await fake.press(third_id, "5")
    assert (await recv(sub))["digit"] == "5"


async def test_a_kicked_ari_caller_is_hung_up_and_their_keys_stop(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    other_id, other = await call_and_join(fake, sub, "+15550000002")
    (bridge, media), (others, _) = await music_of(fake, channel_id), await music_of(fake, other_id)
    await billboard_says(relay, "dialjam", kick(CALLER))
    await fake.ended(channel_id)
    assert callers_hung_up(fake) == {channel_id: "normal"}  # DELETE …/{id}?reason=normal
    assert (await ari_health(relay))["callers"] == 1
    await fake.ended(media)  # their music went with them, not the other's

    async def deleted() -> bool:
        return bridge not in fake.media.bridges

    await until(deleted)
    assert others in fake.media.bridges
    # The StasisEnd of the deletion gives no leave (the billboard said "kicked"); the
    # others play on.
    await fake.press(other_id, "5")
    assert await recv(sub) == digit("5", other["caller"])
    await nothing_published(relay, sub)


async def test_a_kicked_ari_callers_keys_before_the_hang_up_lands_are_not_heard(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    channel_id, _ = await call_and_join(fake, sub)
    fake.failures[f"/channels/{channel_id}"] = 500  # the DELETE fails: the call stays up
    await billboard_says(relay, "dialjam", kick(CALLER, ban_s=0))

    async def tried() -> bool:
        return bool(caller_deletes(fake))

    await until(tried)
    # After the ban (0 s), a key from the still-open call must not bring them back.
    await fake.press(channel_id, "5")
    await nothing_published(relay, sub)
    assert relay.state.errors["ari_rest_500"] == 1


async def test_a_kick_for_a_caller_on_another_gateway_touches_no_ari_call(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake)
    await call_and_join(fake, sub)
    await billboard_says(relay, "dialjam", kick("c-someoneelse"))
    await billboard_says(relay, "dialjam", {**kick(CALLER), "reason": "turn"})
    await nothing_published(relay, sub)
    assert not caller_deletes(fake)


async def test_a_gateway_on_its_own_channel_hears_the_kicks_of_that_channel_only(
    start_relay: StartRelay, fake: FakeAri
) -> None:
    relay, sub = await start(start_relay, fake, channel="lobby")
    channel_id, _ = await call_and_join(fake, sub)
    await billboard_says(relay, "dialjam", kick(CALLER))  # another installation's billboard
    await fake.press(channel_id, "5")
    assert await recv(sub) == digit("5")  # still heard: that kick was not for us
    await billboard_says(relay, "lobby", kick(CALLER))
    await fake.ended(channel_id)
    assert caller_deletes(fake) == [f"/ari/channels/{channel_id}"]


async def test_the_watcher_hears_end_calls_on_control_and_kicks_on_callers_of_its_name_only() -> (
    None
):
    hub = FanOut()
    asked: list[object] = []

    async def hang_up(caller: str, reason: str) -> None:
        asked.append((caller, reason))

    async def end_calls() -> int:
        asked.append("end_calls")
        return 2

    watcher = KickWatcher(hub, "dialjam", hang_up, end_calls, logging.getLogger("test"))
    watcher.start()
    hub.publish("dialjam:control", END_CALLS, 0.0, 0)
    hub.publish("dialjam:control", {"event": "command", "name": "panic", "args": {}}, 0.0, 0)
    hub.publish("dialjam:callers", END_CALLS, 0.0, 0)  # not a command on that channel
    hub.publish("lobby:control", END_CALLS, 0.0, 0)  # another installation's operator
    hub.publish("dialjam:callers", kick("c-abcdefghij"), 0.0, 0, to="c-abcdefghij")
    watcher.flush(0.0)
    await watcher.stop()  # waits for the calls under way
    assert asked == ["end_calls", ("c-abcdefghij", "kicked")]
    assert (watcher.ends, watcher.kicks) == (1, 1)
