"""Prompt styles (fooocus-engine.md §8): named templates that wrap the prompt and add negatives.

The built-in styles are this package's `styles/*.json`, in Fooocus's file format
(`[{"name": ..., "prompt": ..., "negative_prompt": ...}]`) and covering every name Fooocus offers
(`contracts.styles.STYLE_NAMES`), with templates written for this project. A user adds or replaces
styles with JSON files of the same format in `<models>/styles/`; files load in name order after the
built-in ones, and a later file wins when two define the same (normalized) name.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

EXPANSION_STYLE = "Fooocus V2"  # not a template: it turns on the GPT-2 expansion
RANDOM_STYLE = "Random Style"  # not a template: one style drawn per image
PLACEHOLDER = "{prompt}"
BUILTIN_FOLDER = Path(__file__).parent / "styles"
# Fooocus's file order; the order matters only when two files define the same name.
BUILTIN_FILES = ("fooocus.json", "sai.json", "mre.json", "twri.json", "diva.json", "marc_k3nt3l.json")
_CASE_FIXES = (("3d", "3D"), ("Sai", "SAI"), ("Mre", "MRE"), ("(s", "(S"))


def normalize_style_name(name: str) -> str:
    """Fooocus's `normalize_key`: `sai-3d-model` → `SAI 3D Model` (title case, `-` as space, acronyms)."""
    words = name.replace("-", " ").split(" ")
    name = " ".join(word[:1].upper() + word[1:].lower() for word in words)
    for wrong, right in _CASE_FIXES:
        name = name.replace(wrong, right)
    return name


@dataclass(frozen=True, slots=True)
class Style:
    name: str
    prompt: str  # may hold `{prompt}`; each line becomes its own workload
    negative: str

    @property
    def wraps_prompt(self) -> bool:
        return PLACEHOLDER in self.prompt

    def apply(self, prompt: str) -> tuple[list[str], list[str]]:
        """The positive lines with `prompt` substituted, and the negative lines."""
        return self.prompt.replace(PLACEHOLDER, prompt).splitlines(), self.negative.splitlines()


def read_style_file(path: Path) -> list[Style]:
    """The styles of one JSON file; a malformed file or entry is logged and skipped, never fatal."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("style file %s is unreadable, skipped: %s", path, error)
        return []
    styles: list[Style] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            log.warning("style file %s: an entry without a name is skipped", path)
            continue
        styles.append(
            Style(
                normalize_style_name(entry["name"]),
                str(entry.get("prompt", "") or ""),
                str(entry.get("negative_prompt", "") or ""),
            )
        )
    return styles


class StyleBook:
    """Every known style by name: the built-in files, then the user's `styles/*.json` over them."""

    def __init__(self, user_folder: Path | None = None) -> None:
        paths = [BUILTIN_FOLDER / name for name in BUILTIN_FILES]
        if user_folder is not None and user_folder.is_dir():
            paths += sorted(user_folder.glob("*.json"))
        self.styles: dict[str, Style] = {}
        for path in paths:
            for style in read_style_file(path):
                self.styles[style.name] = style

    def __contains__(self, name: str) -> bool:
        return name in self.styles or name in (EXPANSION_STYLE, RANDOM_STYLE)

    def get(self, name: str) -> Style | None:
        return self.styles.get(name)

    def random_name(self, rng: random.Random) -> str:
        """One style drawn for `Random Style`, in file order so a seed always draws the same one."""
        return rng.choice(list(self.styles))
