"""python -m relay.contract PATH — write the web pages' contract module (relay/contract/web.py)."""

import sys

from .web import MODULE_PATH, render_module


def main(argv: list[str]) -> int:
    usage = f"usage: python -m relay.contract {MODULE_PATH}"
    if argv in (["-h"], ["--help"]):
        print(usage)
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):  # never a file named like an option
        print(usage, file=sys.stderr)
        return 2
    with open(argv[0], "w", encoding="utf-8") as out:
        out.write(render_module())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
