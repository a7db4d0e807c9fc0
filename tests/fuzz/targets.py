"""Fuzz targets: the relay's frame handling and the billboard's door, fed bytes.

Each target states the contract it checks: parsing a frame raises nothing but
`ProtocolError`; the relay's admission raises nothing but `ProtocolError` and never
lets a number or a command through the public channel; the billboard's door and the
engine never raise at all. Run by `test_fuzz.py` under atheris (coverage-guided) where
it installs, else under hypothesis.
"""

from __future__ import annotations

from typing import Any

import orjson

from billboard.door import Door
from billboard.engine import Engine, EngineConfig
from relay import protocol
from relay.admission import Publisher, admit
from relay.contract.events import Command, is_caller_id
from relay.contract.privacy import pseudonym
from relay.protocol import ProtocolError

KEY = b"fuzz"
PUBLIC = frozenset({"dialjam"})
WHO = (
    Publisher(),
    Publisher(frozenset({"publisher"})),
    Publisher(caller="c-keypad"),
    Publisher(open=True),
    Publisher(frozenset({"operator"})),
)


def _pseudonymise(number: str) -> str:
    return pseudonym(number, KEY)


def relay_frame(data: bytes) -> None:
    """A frame as the relay reads it, then what its door would fan out."""
    try:
        request = protocol.parse_frame(data)
    except ProtocolError:
        return
    if not isinstance(request, protocol.Publish):
        return
    for who in WHO:
        try:
            out = admit(request.channel, request.data, who, PUBLIC, _pseudonymise)
        except ProtocolError:
            continue
        if request.channel in PUBLIC:
            _check_public(out, who)


def _check_public(out: dict[str, Any], who: Publisher) -> None:
    assert out.get("event") != "command", out
    caller = out.get("caller", out.get("caller_id"))
    assert is_caller_id(caller), out  # never a number
    if who.caller is not None:
        assert caller == who.caller and out.get("source", "web") == "web", out
    orjson.dumps(out)


_door = Door(KEY)
_engine = Engine(EngineConfig(), start=0.0)
_now = [0.0]


def billboard_door(data: bytes) -> None:
    """A relay `data` object on either of the billboard's channels, into the engine."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    events = _door.admit(value)
    assert not any(isinstance(e, Command) for e in events)
    events += _door.admit_command(value)
    for event in events:
        _now[0] += 0.01
        _engine.handle(event, _now[0])
    _engine.advance(_now[0], 0.05)
    _engine.take_updates()
    _engine.scene(_now[0]).to_state()


TARGETS = {"relay_frame": relay_frame, "billboard_door": billboard_door}

# Seeds: every shape of the contract and the attacks that once worked.
SEEDS = [
    b'{"type":"publisher","id":"dialjam","data":{"event":"leave","caller":"c-x","reason":{}}}',
    b'{"type":"publisher","id":"dialjam","data":{"event":"command","name":[]}}',
    b'{"type":"publisher","id":"dialjam","data":{"caller_id":"+15550003333","command":"5"}}',
    b'{"type":"publisher","id":"dialjam","data":{"event":"join","caller":"c-15550003333"}}',
    b'{"type":"publisher","id":"dialjam","data":{"event":"digit","caller":"c-1","digit":"5"}}',
    b'{"type":"subscriber","id":"dialjam","v":2,"since":3,"epoch":"x"}',
    b'{"event":"command","name":"tempo","args":{"bpm":1e308}}',
    b'{"event":"command","name":"kick","args":{"caller":"c-1"}}',
    b'{"event":"join","caller":"c-ab","nick":"Ana","display":"+1 555"}',
    b'{"caller_id":123456789,"command":7}',
]
