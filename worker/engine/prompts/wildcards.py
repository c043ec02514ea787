"""`__name__` wildcards (fooocus-engine.md §4.1): each is replaced by a line of `wildcards/name.txt`.

The line is drawn with the image's `random.Random(task_seed)` or, with `read_wildcards_in_order`, taken
as line `image_index` (cycling). A picked line may hold wildcards itself; replacing stops after
`MAX_DEPTH` rounds. A name without a file is replaced by the bare name, so the prompt still reads.
Files are read on every use: a user may add or edit them while the worker runs.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

WILDCARD = re.compile(r"__([\w/-]+)__")
MAX_DEPTH = 64


class Wildcards:
    """The wildcard files of one models folder (`<models>/wildcards/**/*.txt`), matched case-insensitively."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _files(self) -> dict[str, Path]:
        if self.folder is None or not self.folder.is_dir():
            return {}
        files: dict[str, Path] = {}
        for path in sorted(self.folder.rglob("*.txt")):
            # Both `__name__` and `__sub/name__` find `sub/name.txt`; the first match in sorted order wins.
            relative = path.relative_to(self.folder).with_suffix("").as_posix().lower()
            files.setdefault(relative, path)
            files.setdefault(path.stem.lower(), path)
        return files

    def lines(self, name: str, files: dict[str, Path] | None = None) -> list[str]:
        """The non-empty lines of the wildcard `name`, or `[]` when there is no such file."""
        path = (self._files() if files is None else files).get(name.lower())
        if path is None:
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def apply(self, text: str, rng: random.Random, index: int, in_order: bool) -> str:
        """Replace every wildcard in `text`, drawing from `rng` (or by `index` when `in_order`)."""
        files: dict[str, Path] | None = None
        for _ in range(MAX_DEPTH):  # each round replaces the wildcards that the previous picks brought in
            names = WILDCARD.findall(text)
            if not names:
                break
            files = self._files() if files is None else files
            for name in names:
                options = self.lines(name, files)
                if not options:
                    pick = name
                elif in_order:
                    pick = options[index % len(options)]
                else:
                    pick = rng.choice(options)
                text = text.replace(f"__{name}__", pick, 1)
        return text
