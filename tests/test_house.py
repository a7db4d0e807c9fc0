"""The house's rules, read from the code itself: who may import whom (the
README's "Layout", its import rules) and how long a module may grow.

Every module's imports are read with `ast`, not by importing it: a rule holds for the
code as written, whatever is installed, and a module that fails to import still gets
checked. An import counts wherever it stands (at the top, inside a function, under
``if TYPE_CHECKING:``): a dependency written down is a dependency a reader must follow.
Each rule is one test; its failure names every module that breaks it, the import and
the line.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("relay", "billboard", "bench", "sounds", "tests")
PROJECT = PACKAGES  # the top-level names that are the project's own code


@dataclasses.dataclass(frozen=True)
class Module:
    name: str  # dotted: "relay.contract.events"
    path: Path

    @property
    def where(self) -> str:
        return str(self.path.relative_to(ROOT))


@dataclasses.dataclass(frozen=True)
class Import:
    module: Module
    target: str  # dotted, relative imports resolved: "relay.protocol"
    line: int

    def __str__(self) -> str:
        return f"{self.module.where}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> tuple[Module, ...]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ".venv" not in path.parts:
                found.append(Module(module_name(path), path))
    return tuple(found)


def resolve(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name `from …` names: `from . import x` in relay/app.py is `relay`."""
    if node.level == 0:
        return node.module or ""
    package = module.name.split(".")
    if module.path.name != "__init__.py":
        package.pop()  # a module's own package is its name less its last part
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


@cache
def imports_of(module: Module) -> tuple[Import, ...]:
    """Every name `module` imports. `from a import b` counts as importing `a` and
    `a.b` (b may be a module: `from relay import protocol`)."""
    tree = ast.parse(module.path.read_text(), str(module.path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, node)
            found.append(Import(module, base, node.lineno))
            found += [
                Import(module, f"{base}.{alias.name}", node.lineno)
                for alias in node.names
                if alias.name != "*"
            ]
    return tuple(found)


def within(name: str, *prefixes: str) -> bool:
    """`name` is one of `prefixes` or inside one: within("relay.app", "relay") holds."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def breaches(
    applies_to: Callable[[Module], bool], forbidden: Callable[[Import], bool]
) -> list[str]:
    """Each import, by a module the rule applies to, that the rule forbids."""
    seen: dict[tuple[str, int], Import] = {}
    for module in modules():
        if not applies_to(module):
            continue
        for imp in imports_of(module):
            if forbidden(imp):
                # `from a import b` is two names on one line: name the longer, `a.b`.
                key = (module.where, imp.line)
                if key not in seen or len(imp.target) > len(seen[key].target):
                    seen[key] = imp
    return sorted(str(imp) for imp in seen.values())


# -- the import rules -------------------------------------------------------------

IO_LIBRARIES = ("aiohttp", "asyncio", "pygame", "mido", "rtmidi", "socket", "time")
ENGINE_FORBIDDEN = ("pygame", "mido", "rtmidi", "aiohttp", "asyncio", "time")
# The fan-out core: the pure frames and whatever delivers events to connections.
FANOUT_CORE = ("relay.protocol", "relay.fanout", "relay.counters")


@dataclasses.dataclass(frozen=True)
class Rule:
    says: str
    applies_to: Callable[[Module], bool]
    forbidden: Callable[[Import], bool]


RULES = {
    "engine_is_pure": Rule(
        "billboard/engine/ imports nothing from the rest of billboard/, nor pygame, mido, "
        "aiohttp, asyncio or time: events in, notes and a scene out, time passed in",
        lambda m: within(m.name, "billboard.engine"),
        lambda i: (
            (within(i.target, "billboard") and not within(i.target, "billboard.engine"))
            or within(i.target, *ENGINE_FORBIDDEN)
        ),
    ),
    "contract_is_pure": Rule(
        "relay/contract/ imports nothing else of the project's and no I/O library",
        lambda m: within(m.name, "relay.contract"),
        lambda i: (
            (within(i.target, *PROJECT) and not within(i.target, "relay.contract"))
            or within(i.target, *IO_LIBRARIES)
        ),
    ),
    "fanout_knows_no_aiohttp_and_no_gateway": Rule(
        "the relay's protocol and fan-out core import no aiohttp and no gateway",
        lambda m: within(m.name, *FANOUT_CORE),
        lambda i: within(i.target, "aiohttp", "relay.gateways"),
    ),
    "relay_never_imports_billboard": Rule(
        "relay/ never imports billboard/ (the billboard embeds the relay, not the reverse)",
        lambda m: within(m.name, "relay"),
        lambda i: within(i.target, "billboard"),
    ),
    "server_never_imports_rehearsal": Rule(
        "the relay's server modules import nothing from relay/rehearsal/ (tools, apart)",
        lambda m: within(m.name, "relay") and not within(m.name, "relay.rehearsal"),
        lambda i: within(i.target, "relay.rehearsal"),
    ),
    "nothing_imports_a_main_module": Rule(
        "no module imports a __main__ module: __main__ parses arguments, nothing more",
        lambda m: True,
        lambda i: i.target.split(".")[-1] == "__main__",
    ),
    "only_tests_import_tests": Rule(
        "nothing outside tests/ imports tests",
        lambda m: not within(m.name, "tests"),
        lambda i: within(i.target, "tests"),
    ),
    "nothing_imports_a_test_module": Rule(
        "no module imports a test module (test_*.py) or a conftest.py: what tests share "
        "lives in tests/support/ (or a helper module beside them), fixtures in conftest.py",
        lambda m: True,
        lambda i: (last := i.target.split(".")[-1]).startswith("test_") or last == "conftest",
    ),
}

# Rules broken today by code that is being moved; each entry says what will fix it.
# When that lands the test passes, and strict xfail turns the pass into a failure:
# remove the entry then.
RULES_BROKEN_WHILE_MOVING: dict[str, str] = {}


def rule_cases() -> list[object]:
    cases = []
    for name in RULES:
        reason = RULES_BROKEN_WHILE_MOVING.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        cases.append(pytest.param(name, id=name, marks=marks))
    return cases


@pytest.mark.parametrize("rule_name", rule_cases())
def test_the_import_rules_of_the_design_hold(rule_name: str) -> None:
    rule = RULES[rule_name]
    assert any(rule.applies_to(m) for m in modules()), f"no module for: {rule.says}"
    broken = breaches(rule.applies_to, rule.forbidden)
    assert not broken, f"{rule.says}; broken by:\n  " + "\n  ".join(broken)


def test_the_fanout_rule_looks_where_the_fanout_is() -> None:
    """A fan-out moved or renamed would leave its rule checking nothing but the frames:
    FANOUT_CORE must name it."""
    names = {m.name for m in modules()}
    assert "relay.protocol" in names
    assert names & set(FANOUT_CORE) - {"relay.protocol"}, (
        f"none of {FANOUT_CORE[1:]} exists: name the fan-out's modules in FANOUT_CORE"
    )


def test_the_import_reader_sees_what_it_must() -> None:
    """The rules above are only as good as the reading: it resolves relative imports
    and finds imports anywhere in a module."""
    source = ROOT / "relay" / "app.py"
    app = Module("relay.app", source)
    targets = {i.target for i in imports_of(app)}
    assert "aiohttp" in targets or "aiohttp.web" in targets
    assert "relay.protocol" in targets  # from `from . import protocol`
    assert within("relay.contract.events", "relay.contract")
    assert not within("relay.contracts", "relay.contract")
    assert any(m.name == "billboard.engine" for m in modules())
    assert any(m.name == "tests.test_house" for m in modules())


# -- module size ------------------------------------------------------------------

LINE_LIMIT = 600
REASON = "Why this module is long:"


def says_why_it_is_long(module: Module) -> bool:
    docstring = ast.get_docstring(ast.parse(module.path.read_text())) or ""
    return any(p.strip().startswith(REASON) for p in docstring.split("\n\n"))


def too_long(module: Module) -> bool:
    with module.path.open() as lines:
        return sum(1 for _ in lines) > LINE_LIMIT and not says_why_it_is_long(module)


def test_no_module_is_over_600_lines_unless_its_docstring_says_why() -> None:
    long = [m.where for m in modules() if too_long(m)]
    assert not long, (
        f"over {LINE_LIMIT} lines, and no paragraph of the module's docstring starts "
        f"{REASON!r} (split it by job, or give the reason): {', '.join(long)}"
    )
