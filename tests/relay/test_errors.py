"""The peer's fault is one family: the relay's frame errors and the gateways' message
errors share one root, so one `except PeerError` separates them from our bugs."""

from __future__ import annotations

from relay.contract.errors import PeerError
from relay.gateways.ari_core import AriError
from relay.gateways.twilio import StreamError
from relay.protocol import ProtocolError


def test_every_peer_error_shares_one_root_with_its_code_and_message() -> None:
    for cls in (ProtocolError, StreamError, AriError):
        assert issubclass(cls, PeerError)
    exc = ProtocolError("too_large", "frame over 4096 bytes", close=1009)
    assert (exc.code, exc.message, exc.close, str(exc)) == (
        "too_large",
        "frame over 4096 bytes",
        1009,
        "frame over 4096 bytes",
    )
