"""The web pages read the same contract as the Python side: web/js/contract.js is
generated from relay/contract, and the pages keep no copy of their own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from relay.contract import channels, events
from relay.contract.web import MODULE_PATH, render_module, web_contract

ROOT = Path(__file__).resolve().parents[3]
# Every page script, the console's modules too (contract.js is the one generated).
PAGES_JS = tuple(
    sorted(p.name for p in (ROOT / "web" / "js").glob("*.js") if p.name != "contract.js")
)


def test_the_committed_module_is_what_the_contract_generates() -> None:
    committed = (ROOT / MODULE_PATH).read_text(encoding="utf-8")
    assert committed == render_module(), (
        f"{MODULE_PATH} differs from relay/contract: run `python -m relay.contract {MODULE_PATH}`"
    )


def test_the_pages_contract_holds_the_keys_names_and_limits_they_need() -> None:
    contract = web_contract()
    assert contract["keys"] == events.KEYPAD_KEYS == "0123456789*#"
    assert set(contract["events"]) == set(events.EVENTS)
    assert set(contract["leave_reasons"]) == events.LEAVE_REASONS
    assert set(contract["commands"]) == events.COMMANDS
    assert re.fullmatch(contract["channel_pattern"], "dialjam:state")
    assert contract["suffixes"]["state"] == channels.STATE_SUFFIX
    assert (contract["tempo_min_bpm"], contract["tempo_max_bpm"]) == (40, 240)


def test_no_page_keeps_a_copy_of_the_contract() -> None:
    for name in PAGES_JS:
        text = (ROOT / "web" / "js" / name).read_text(encoding="utf-8")
        for copy in ("0123456789", ":state`", ":control`", "[A-Za-z0-9_.:-]", '"dialjam"'):
            assert copy not in text, f"web/js/{name} spells {copy!r}: import it from contract.js"


def test_every_page_script_that_uses_the_contract_imports_it_relatively() -> None:
    for name in ("keypad.js", "console.js", "wall.js"):
        text = (ROOT / "web" / "js" / name).read_text(encoding="utf-8")
        assert 'from "./contract.js";' in text


def test_the_writer_takes_no_option_for_a_file_name(tmp_path: Path) -> None:
    def contract(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "relay.contract", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    helped = contract("--help")
    assert helped.returncode == 0 and "usage: python -m relay.contract" in helped.stdout
    assert contract("-x").returncode == 2
    assert list(tmp_path.iterdir()) == []  # no file named "--help" or "-x"
    assert contract("contract.js").returncode == 0
    assert (tmp_path / "contract.js").read_text(encoding="utf-8") == render_module()
