"""The wire protocol, without I/O."""

from __future__ import annotations

import orjson
import pytest

from relay import protocol
from relay.protocol import ProtocolError, Publish, Subscribe


def test_seed_subscriber_frame_parses_to_a_v1_subscribe() -> None:
    assert protocol.parse_frame(b'{"type":"subscriber","id":"dialjam"}') == Subscribe("dialjam")


def test_seed_publisher_frame_keeps_its_data() -> None:
    req = protocol.parse_frame(
        b'{"type":"publisher","id":"dialjam","data":{"caller_id":"4155551212","command":"5"}}'
    )
    assert req == Publish("dialjam", {"caller_id": "4155551212", "command": "5"})


def test_a_publish_carries_its_ref_and_its_ack_and_error_give_it_back() -> None:
    req = protocol.parse_frame(b'{"type":"publisher","id":"a","data":{},"ref":9007199254740991}')
    assert req == Publish("a", {}, ref=2**53 - 1)
    ack = orjson.loads(protocol.encode_ack("a", 3, "e-1", 41))
    assert ack == {"type": "ack", "id": "a", "seq": 3, "epoch": "e-1", "ref": 41}
    assert "ref" not in orjson.loads(protocol.encode_ack("a", 3, "e-1"))
    error = orjson.loads(protocol.encode_error("backplane_unavailable", "down", 0))
    assert (error["code"], error["ref"]) == ("backplane_unavailable", 0)
    assert "ref" not in orjson.loads(protocol.encode_error("bad_json", "no"))


def test_a_publish_may_ask_for_its_ref_alone_as_its_ack() -> None:
    req = protocol.parse_frame(b'{"type":"publisher","id":"a","data":{},"ack":"ref","ref":5}')
    assert req == Publish("a", {}, ack=True, ref=5, short_ack=True)
    short = protocol.encode_ack("a", 3, "e-1", 5, short=True)
    assert orjson.loads(short) == {"type": "ack", "ref": 5}
    assert len(short) * 2 < len(protocol.encode_ack("a", 3, "e-1", 5))


def test_v2_subscribe_carries_since_and_epoch() -> None:
    req = protocol.parse_frame(b'{"type":"subscriber","id":"a","v":2,"since":7,"epoch":"x-1"}')
    assert req == Subscribe("a", v=2, since=7, epoch="x-1")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"{not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b"[1,2]", "not_object"),
        (b'"hello"', "not_object"),
        (b"{}", "bad_type"),
        (b'{"type":5,"id":"a"}', "bad_type"),
        (b'{"type":"shout","id":"a"}', "unknown_type"),
        (b'{"type":"subscriber"}', "bad_id"),
        (b'{"type":"subscriber","id":""}', "bad_id"),
        (b'{"type":"subscriber","id":"has space"}', "bad_id"),
        (b'{"type":"subscriber","id":"' + b"a" * 65 + b'"}', "bad_id"),
        (b'{"type":"subscriber","id":7}', "bad_id"),
        (b'{"type":"publisher","id":"a"}', "bad_data"),
        (b'{"type":"publisher","id":"a","data":[1]}', "bad_data"),
        (b'{"type":"publisher","id":"a","data":{},"ack":"yes"}', "bad_field"),
        (b'{"type":"publisher","id":"a","data":{},"ack":"ref"}', "bad_field"),  # no ref
        (b'{"type":"publisher","id":"a","data":{},"ref":"1"}', "bad_field"),
        (b'{"type":"publisher","id":"a","data":{},"ref":-1}', "bad_field"),
        (b'{"type":"publisher","id":"a","data":{},"ref":true}', "bad_field"),
        (b'{"type":"publisher","id":"a","data":{},"ref":9007199254740992}', "bad_field"),
        (b'{"type":"subscriber","id":"a","v":3}', "bad_field"),
        (b'{"type":"subscriber","id":"a","v":2,"since":-1}', "bad_field"),
        (b'{"type":"subscriber","id":"a","since":3}', "bad_field"),
        (b'{"type":"subscriber","id":"a","token":1}', "bad_field"),
        (b'{"type":"publisher","id":"a","data":{"n":1e999}}', "bad_json"),
        (b'{"type":"publisher","id":"a","data":{"n":NaN}}', "bad_json"),
        (b'{"type":"publisher","id":"a","data":{"n":18446744073709551616}}', "bad_json"),
        (b'{"type":"publisher","id":"a","data":{"n":-9223372036854775809}}', "bad_json"),
        (b'{"type":"subscriber","id":"a","v":2,"since":' + b"9" * 40 + b"}", "bad_json"),
    ],
)
def test_bad_frames_raise_protocol_errors_with_their_code(frame: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse_frame(frame)
    assert info.value.code == code
    assert info.value.close is None


def test_integers_within_64_bits_and_long_digit_strings_are_kept_exactly() -> None:
    # orjson would turn 2**64 into a float silently: beyond 64 bits is bad_json (above);
    # at the edges, and digits inside strings (an escaped quote before them too), pass.
    frame = (
        b'{"type":"publisher","id":"a","data":{"max":18446744073709551615,'
        b'"min":-9223372036854775808,"s":"\\\\\\"12345678901234567890123","f":1.5e19}}'
    )
    req = protocol.parse_frame(frame)
    assert isinstance(req, Publish)
    assert req.data == {
        "max": 2**64 - 1,
        "min": -(2**63),
        "s": '\\"12345678901234567890123',
        "f": 1.5e19,
    }


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        (b'{"f":1.5e19,"n":18446744073709551616}', True),
        (b'{"f":[1e19],"n":[1,[-9223372036854775809]]}', True),
        (b'{"s":"18446744073709551616","t":"' + b"9" * 5000 + b'"}', False),
        (b'{"f":1e19,"s":"18446744073709551616"}', False),  # a string's digits, and a float
        (b'{"f":1e19,"n":18446744073709551615,"m":-9223372036854775808}', False),
        (b'{"f":1e19,"x":12345678901234567890123.5,"e":1e-12345678901234567890}', False),
        (b'{"f":1e19,"s":"\\"","n":' + b"9" * 30 + b"}", True),
        (b'{"f":1e19,"s":"\\"' + b"9" * 30 + b'"}', False),
        (b"[" + b",".join([b"1"] * 5000) + b',"' + b"1" * 40 + b'"]', False),
    ],
)
def test_an_integer_beyond_64_bits_is_found_wherever_it_hides(data: bytes, refused: bool) -> None:
    frame = b'{"type":"publisher","id":"a","data":{"v":' + data + b"}}"
    if refused:
        with pytest.raises(ProtocolError, match="beyond 64 bits"):
            protocol.parse_frame(frame)
    else:
        protocol.parse_frame(frame)


def test_a_64_character_id_of_every_allowed_character_is_valid() -> None:
    name = ("Az09_.:-" * 8)[:64]
    assert protocol.valid_channel(name)


def test_control_and_state_channels_need_their_roles() -> None:
    assert protocol.required_role("dialjam:control") == "operator"
    assert protocol.required_role("dialjam:state") == "billboard"
    assert protocol.required_role("dialjam") is None
    assert protocol.required_role("dialjam:controller") is None


def test_envelope_is_valid_json_with_the_data_inside() -> None:
    env = protocol.encode_envelope(b'"dialjam"', 3, 1700000000123, b'{"digit":"5"}')
    assert orjson.loads(env) == {
        "type": "event",
        "id": "dialjam",
        "seq": 3,
        "ts": 1700000000123,
        "data": {"digit": "5"},
    }


def test_several_envelopes_coalesce_into_one_json_array() -> None:
    a, b = orjson.dumps({"seq": 1}), orjson.dumps({"seq": 2})
    assert orjson.loads(protocol.coalesce([a, b])) == [{"seq": 1}, {"seq": 2}]
    assert protocol.coalesce([a]) == a


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frames_carry_their_length_as_rfc_6455_says(size: int) -> None:
    frame = protocol.ws_text_frame(b"x" * size)
    assert frame[0] == 0x81  # FIN + text, never masked from a server
    if size < 126:
        assert frame[1] == size and len(frame) == 2 + size
    elif size < 65536:
        assert frame[1] == 126 and int.from_bytes(frame[2:4], "big") == size
    else:
        assert frame[1] == 127 and int.from_bytes(frame[2:10], "big") == size


def test_a_close_frame_carries_its_code_and_a_reason_cut_to_a_control_frames_size() -> None:
    # RFC 6455 §5.5.1: FIN + opcode 8, unmasked from a server, the code in network order.
    assert protocol.ws_close_frame(protocol.CLOSE_PROTOCOL_ERROR) == b"\x88\x02\x03\xea"
    frame = protocol.ws_close_frame(protocol.CLOSE_GOING_AWAY, b"relay shutting down")
    assert frame[:4] == b"\x88\x15\x03\xe9" and frame[4:] == b"relay shutting down"
    long = protocol.ws_close_frame(1000, b"x" * 300)
    assert long[1] == 125 and len(long) == 2 + 125  # §5.5: control payloads ≤ 125 bytes


def test_an_installations_channels_are_its_name_and_three_suffixes() -> None:
    assert protocol.installation_channels("dialjam") == {
        "dialjam",
        "dialjam:state",
        "dialjam:control",
        "dialjam:callers",
    }
    name = "t" * 58  # ":state" still fits in 64 characters; ":control" would not
    assert protocol.installation_channels(name) == {name, name + ":state"}
