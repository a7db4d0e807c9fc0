"""A Twilio call as the tests send it: the account and call identifiers, the voice
webhook's form and the stream's `start` message in the shapes Twilio documents
(https://www.twilio.com/docs/voice/media-streams/websocket-messages). Shared by the
Twilio gateway's test modules."""

from __future__ import annotations

from typing import Any

PUBLIC = "https://jam.example.org"
TOKEN = "12345678901234567890123456789012"
NUMBER = "+14155550112"
KEY = "test-pseudonym-key"
CALL_SID = "CA5ad4b3a2c1d0e9f8a7b6c5d4e3f2a1b0"
STREAM_SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
ACCOUNT_SID = "AC25e16e9a716a4a1786a7c83f58e30482"


def webhook_form(number: str = NUMBER, call_sid: str = CALL_SID) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": "+14155550100",
        "Caller": number,
        "Direction": "inbound",
        "From": number,
        "FromCountry": "US",
        "To": "+14155550100",
    }


def start_message(params: dict[str, str], call_sid: str = CALL_SID) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": STREAM_SID,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": params,
        },
        "streamSid": STREAM_SID,
    }
