"""python tests/fuzz/run_atheris.py TARGET [libFuzzer flags…]: one target under atheris."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from tests.fuzz import targets


def main() -> None:
    target = targets.TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
