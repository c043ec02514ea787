"""`fooocus-fleet edge|worker|models`: one command, dispatching to the package that owns each part.

Each part is imported only when chosen, so `edge` and `worker` never import each other.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {"edge": "edge.cli", "worker": "worker.cli", "models": "worker.cli"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in COMMANDS:
        print(f"usage: fooocus-fleet {{{'|'.join(COMMANDS)}}} [options]  (each takes --help)")
        return 2
    module = importlib.import_module(COMMANDS[args[0]])
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
