"""The contract as the web pages read it: ``web/js/contract.js``, a JavaScript module
generated from this package, so the keypad, the console and the wall mirror never
keep a second copy of the keys, the event and channel names or the limits.

    python -m relay.contract web/js/contract.js     # after changing the contract

A test compares the committed file with `render_module()`, so the two cannot drift.
"""

from __future__ import annotations

import json
from typing import Any, Final

from . import callers, channels, events

MODULE_PATH: Final = "web/js/contract.js"


def web_contract() -> dict[str, Any]:
    """What the pages need of the contract, as JSON values."""
    return {
        "keys": events.KEYPAD_KEYS,
        "key_names": events.KEY_NAMES,
        "scale_names": events.SCALE_NAMES,
        "style_names": events.STYLE_NAMES,
        "events": {name: name for name in events.EVENTS},
        "leave_reasons": {name: name for name in sorted(events.LEAVE_REASONS)},
        "public_leave_reasons": sorted(events.PUBLIC_LEAVE_REASONS),
        "commands": {name: name for name in sorted(events.COMMANDS)},
        "web_source": events.WEB_SOURCE,
        "channel_pattern": channels.CHANNEL_PATTERN,
        "default_channel": channels.DEFAULT_NAME,
        "suffixes": {
            "state": channels.STATE_SUFFIX,
            "control": channels.CONTROL_SUFFIX,
            "callers": channels.CALLERS_SUFFIX,
        },
        "nick_max": events.NICK_MAX,
        "caller_max_digits": events.CALLER_MAX_DIGITS,
        "tempo_min_bpm": int(events.TEMPO_MIN_BPM),
        "tempo_max_bpm": int(events.TEMPO_MAX_BPM),
        "facade_max": events.FACADE_MAX,
        "play_modes": {name: name for name in callers.PLAY_MODES},
        "notices": {name: name for name in callers.NOTICE_CODES},
        "digest_keepalive_s": callers.DIGEST_KEEPALIVE_S,
    }


# The module's named exports: (name, JavaScript expression over `CONTRACT`).
_EXPORTS: Final = (
    ("KEYS", "CONTRACT.keys"),
    ("KEY_NAMES", "CONTRACT.key_names"),
    ("SCALE_NAMES", "CONTRACT.scale_names"),
    ("STYLE_NAMES", "CONTRACT.style_names"),
    ("EVENT", "CONTRACT.events"),
    ("LEAVE_REASON", "CONTRACT.leave_reasons"),
    ("COMMAND", "CONTRACT.commands"),
    ("WEB_SOURCE", "CONTRACT.web_source"),
    ("CHANNEL_ID", "new RegExp(`^${CONTRACT.channel_pattern}$`)"),
    ("DEFAULT_CHANNEL", "CONTRACT.default_channel"),
    ("NICK_MAX", "CONTRACT.nick_max"),
    ("CALLER_MAX_DIGITS", "CONTRACT.caller_max_digits"),
    ("MIN_BPM", "CONTRACT.tempo_min_bpm"),
    ("MAX_BPM", "CONTRACT.tempo_max_bpm"),
    ("FACADE_MAX", "CONTRACT.facade_max"),
    ("PLAY_MODE", "CONTRACT.play_modes"),
    ("NOTICE", "CONTRACT.notices"),
    ("DIGEST_KEEPALIVE_S", "CONTRACT.digest_keepalive_s"),
)


def render_module() -> str:
    """The text of ``web/js/contract.js``."""
    body = json.dumps(web_contract(), indent=2, ensure_ascii=False)
    lines = [
        "// The dialjam contract for the web pages, generated from relay/contract by",
        f"// `python -m relay.contract {MODULE_PATH}`: do not edit by hand.",
        "",
        f"export const CONTRACT = Object.freeze({body});",
        "",
        *(f"export const {name} = {expression};" for name, expression in _EXPORTS),
        "",
        "/** NAME:state, NAME:control, NAME:callers of the installation `name`. */",
        "export const stateChannel = (name) => `${name}${CONTRACT.suffixes.state}`;",
        "export const controlChannel = (name) => `${name}${CONTRACT.suffixes.control}`;",
        "export const callersChannel = (name) => `${name}${CONTRACT.suffixes.callers}`;",
        "",
    ]
    return "\n".join(lines)
