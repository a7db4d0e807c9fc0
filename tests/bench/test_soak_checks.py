"""The soak's reading of the billboard's stderr."""

from __future__ import annotations

import subprocess
import sys

from bench.soak_billboard import stderr_problems


def test_a_stop_that_overran_its_deadline_is_reported_with_where_it_hung() -> None:
    # What billboard/__main__.py's stop deadline writes: faulthandler's dump, then exit.
    hung = subprocess.run(
        [
            sys.executable,
            "-c",
            "import faulthandler, time\n"
            "faulthandler.dump_traceback_later(0.1, exit=True)\n"
            "def stuck_in_stop():\n    time.sleep(30)\n"
            "stuck_in_stop()\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert hung.returncode != 0
    bad, warnings, leaks = stderr_problems(hung.stderr, set())
    assert len(bad) == 1 and bad[0].startswith("Timeout (") and "stuck_in_stop" in bad[0]
    assert (warnings, leaks) == (0, [])


def test_a_quiet_stop_has_nothing_to_report() -> None:
    text = "2026-11-30 10:00:00,000 INFO billboard: stopped\n"
    assert stderr_problems(text, set()) == ([], 0, [])


def test_a_loopback_port_is_no_callers_number_but_a_number_in_a_line_is() -> None:
    from bench.soak_plan import digit_windows

    windows = digit_windows(["+15550312345"])  # shares "55503" with the port below
    port_lines = (
        "WARNING relay.ari: cannot reach Asterisk's ARI at http://127.0.0.1:55503/ari "
        "(Connect call failed ('127.0.0.1', 55503)); retrying\n"
    )
    assert stderr_problems(port_lines, windows)[2] == []
    leak = "INFO relay.twilio: caller +15550312345 joined\n"
    assert stderr_problems(leak, windows)[2] == ["15550312345"]
