"""python -m relay.contract PATH — write the web pages' contract module (relay/contract/web.py)."""

import sys

from .web import MODULE_PATH, render_module


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m relay.contract {MODULE_PATH}", file=sys.stderr)
        return 2
    with open(argv[0], "w", encoding="utf-8") as out:
        out.write(render_module())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
