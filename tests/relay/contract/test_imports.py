"""The contract stands alone: it imports nothing else of the project's and no I/O
library, so every piece (the relay, the billboard, the tools, the pages' generator)
can read it without pulling in a server, a window or a clock."""

from __future__ import annotations

import ast
from pathlib import Path

CONTRACT = Path(__file__).resolve().parents[3] / "relay" / "contract"
PROJECT = {"relay", "billboard", "tests", "bench", "sounds"}
IO_LIBRARIES = {"aiohttp", "asyncio", "pygame", "mido", "rtmidi", "time", "socket", "orjson"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_contract_imports_only_itself_and_the_standard_library() -> None:
    files = sorted(CONTRACT.glob("*.py"))
    assert files
    for path in files:
        for name in imported_modules(path):
            where = f"relay/contract/{path.name} imports {name}"
            assert not name.startswith(".."), where  # beyond the contract
            if name.startswith("."):
                continue  # the contract's own modules
            top = name.split(".")[0]
            assert top not in PROJECT, where
            assert top not in IO_LIBRARIES, where
