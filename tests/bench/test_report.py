"""The README's figures are the committed results' (bench/report.py), and every result
says which machine it ran on and how busy that machine was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
SCRIPTS = (
    "relay_load",
    "relay_memory",
    "engine_speed",
    "frame_time",
    "grid_timing",
    "dtmf_speed",
    "soak",
)


def test_the_readme_figures_are_what_the_committed_results_generate() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report.render(readme, RESULTS) == readme, (
        "README.md's figures differ from bench/results/: run python bench/report.py"
    )


def test_every_benchmark_has_a_section_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(report.marked(readme))
    assert set(SCRIPTS) <= named
    assert set(named) <= set(report.sections(RESULTS))


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_result_names_its_machine_and_its_load(script: str) -> None:
    doc = json.loads((RESULTS / f"{script}.json").read_text(encoding="utf-8"))
    assert doc["script"] == script
    machine = doc["machine"]
    for key in ("cpu", "cores", "python", "os", "libraries"):
        assert machine[key], key
    assert {"aiohttp", "uvloop", "orjson"} <= set(machine["libraries"])
    assert len(machine["load"]["start"]) == 3 and len(machine["load"]["end"]) == 3


def test_a_stale_figure_is_rewritten_and_the_rest_left_alone(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    name = report.marked(readme)[0]
    begin, end = f"<!-- bench:{name} -->\n", f"<!-- /bench:{name} -->"
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    stale = f"{head}{begin}a hand-copied 7.3× from another day\n{end}{tail}"
    assert report.render(stale, RESULTS) == readme
    path = tmp_path / "README.md"
    path.write_text(stale, encoding="utf-8")
    assert report.main(["--check", "--readme", str(path), "--results", str(RESULTS)]) == 1
    assert path.read_text(encoding="utf-8") == stale
    assert report.main(["--readme", str(path), "--results", str(RESULTS)]) == 0
    assert path.read_text(encoding="utf-8") == readme


def test_a_section_without_its_results_is_an_error(tmp_path: Path) -> None:
    readme = "<!-- bench:engine_speed -->\nold\n<!-- /bench:engine_speed -->\n"
    with pytest.raises(report.ReportError, match=r"engine_speed\.json is missing"):
        report.render(readme, tmp_path)


def test_numbers_are_written_as_the_readme_writes_them() -> None:
    assert report.num(116_402) == "116,000"
    assert report.num(1980.4) == "1,980"
    assert report.num(0.153) == "0.15"
    assert report.num(4.07) == "4.07"
    assert report.num(27.84) == "27.8"
    assert report.pct(100.0) == "100 %"
    assert report.pct(67.24) == "67.2 %"
