"""The text syntax of a Fooocus prompt (fooocus-engine.md §4.1): lines, `(text:1.2)` weights with `\\(`
escapes, inline `<lora:name:weight>` tags and `[[a,b,c]]` arrays. Wildcards live in `wildcards.py`.

Weights follow ComfyUI's reading, which Fooocus uses: `(text)` multiplies the surrounding weight by
1.1, `(text:w)` sets the weight to `w` (it does not multiply), groups nest, and `\\(`/`\\)` are literal
parentheses. `[text]` has no special meaning.
"""

from __future__ import annotations

import re

PAREN_WEIGHT = 1.1
# Stand-ins for escaped parentheses while groups are matched (characters no prompt contains).
_OPEN, _CLOSE = "\x00\x01", "\x00\x02"
_LORA = re.compile(r"<lora:([^:<>]+):([+-]?(?:\d+(?:\.\d*)?|\.\d+))>")
_ARRAY = re.compile(r"\[\[(.*?)\]\]")
_SPACES = re.compile(r" {2,}")


def clean_line(text: str) -> str:
    """Fooocus's `safe_str`: runs of spaces collapse to one; commas, dots and whitespace are trimmed."""
    return _SPACES.sub(" ", text).strip(",. \r\n")


def split_lines(text: str) -> list[str]:
    """The cleaned, non-empty lines of a prompt; `[""]` when there are none (line 0 always exists)."""
    return [line for line in (clean_line(raw) for raw in text.splitlines()) if line] or [""]


def extract_loras(text: str) -> tuple[str, list[tuple[str, float]]]:
    """Remove every `<lora:name:weight>` tag; return the text left and the `(name, weight)` pairs in order.

    The name is as written (no extension added); matching it to a file in `loras/` is up to the caller.
    """
    found = [(match.group(1).strip(), float(match.group(2))) for match in _LORA.finditer(text)]
    return _LORA.sub("", text), found


def apply_arrays(text: str, index: int) -> str:
    """Replace each `[[a,b,c]]` with one item chosen by the image index.

    With several arrays the index counts through every combination, the first array fastest, so a job of
    `len(a)*len(b)` images sees each pairing once.
    """
    place = index
    for match in list(_ARRAY.finditer(text)):
        items = [item.strip() for item in match.group(1).split(",")]
        text = text.replace(match.group(0), items[place % len(items)], 1)
        place //= len(items)
    return text


def _escape(text: str) -> str:
    return text.replace("\\(", _OPEN).replace("\\)", _CLOSE)


def _unescape(text: str) -> str:
    return text.replace(_OPEN, "(").replace(_CLOSE, ")")


def _top_level_groups(text: str) -> list[str]:
    """Split into plain runs and balanced `( … )` groups (unbalanced parentheses stay plain text)."""
    parts: list[str] = []
    depth, start = 0, 0
    for position, char in enumerate(text):
        if char == "(":
            if depth == 0:
                if position > start:
                    parts.append(text[start:position])
                start = position
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                parts.append(text[start : position + 1])
                start = position + 1
    if start < len(text):
        parts.append(text[start:])
    return parts


def _weigh(text: str, weight: float) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for part in _top_level_groups(text):
        if len(part) >= 2 and part[0] == "(" and part[-1] == ")":
            inner, inner_weight = part[1:-1], weight * PAREN_WEIGHT
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    inner_weight = float(inner[colon + 1 :])
                    inner = inner[:colon]
                except ValueError:  # a colon that is not a weight, e.g. "(time: dusk)"
                    pass
            out.extend(_weigh(inner, inner_weight))
        else:
            out.append((part, weight))
    return out


def parse_weights(text: str) -> list[tuple[str, float]]:
    """`"a (b:1.5) c"` → `[("a ", 1.0), ("b", 1.5), (" c", 1.0)]`; escapes become literal parentheses."""
    return [(_unescape(part), weight) for part, weight in _weigh(_escape(text), 1.0)]


def weighted_words(text: str) -> list[tuple[str, float]]:
    """The space-separated words of a prompt with their weights; each word is tokenized on its own."""
    return [
        (word, weight)
        for segment, weight in parse_weights(text)
        for word in segment.replace("\n", " ").split(" ")
        if word
    ]
