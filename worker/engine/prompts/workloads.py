"""Prompt and negative prompt → the texts encoded for one image (fooocus-engine.md §4.1, §8).

Each image gets its own lists of **workloads**, texts encoded independently and concatenated along the
token axis. For image `index` with `rng = random.Random(task_seed)`:

- the prompt and negative split into cleaned lines; line 0 is the main prompt, the rest are extra lines;
- wildcards are drawn (main prompt, negative, extra positive lines, extra negative lines, in this order,
  all from `rng`), then `[[a,b]]` arrays in the main prompt pick by `index`;
- positive = each selected style's lines with the main prompt in `{prompt}` (the raw main prompt goes
  first when no style has `{prompt}`), then the extra lines;
- negative = the styles' negative lines, the user's negative (line 0), then its extra lines;
- empty texts are dropped (an all-empty list keeps the main text, so an empty negative encodes `""`);
- `positive_top_k`/`negative_top_k` count the workloads that feed the pooled embedding, fixed here,
  before the Fooocus V2 expansion is appended.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from worker.engine.prompts.styles import EXPANSION_STYLE, RANDOM_STYLE, StyleBook
from worker.engine.prompts.syntax import apply_arrays, split_lines
from worker.engine.prompts.wildcards import Wildcards


@dataclass
class Workloads:
    """The texts of one image, before any expansion."""

    main_prompt: str  # line 0 after wildcards and arrays: what the expansion extends
    positive: list[str]
    negative: list[str]
    styles: list[str] = field(default_factory=list)  # templates applied, `Random Style` resolved

    @property
    def positive_top_k(self) -> int:
        return len(self.positive)

    @property
    def negative_top_k(self) -> int:
        return len(self.negative)


def _non_empty(texts: list[str], default: str) -> list[str]:
    return [text for text in texts if text] or [default]


def build_workloads(
    prompt: str,
    negative_prompt: str,
    style_names: list[str],
    *,
    seed: int,
    index: int,
    book: StyleBook,
    wildcards: Wildcards,
    in_order: bool = False,
) -> Workloads:
    """The workloads of image `index`, whose seed is `seed`. Unknown style names are ignored."""
    rng = random.Random(seed)
    main, *extra = split_lines(prompt)
    negative, *extra_negative = split_lines(negative_prompt)
    main = apply_arrays(wildcards.apply(main, rng, index, in_order), index)
    negative = wildcards.apply(negative, rng, index, in_order)
    extra = [wildcards.apply(line, rng, index, in_order) for line in extra]
    extra_negative = [wildcards.apply(line, rng, index, in_order) for line in extra_negative]

    positive: list[str] = []
    negatives: list[str] = []
    applied: list[str] = []
    wrapped = False
    for name in style_names:
        if name == EXPANSION_STYLE:
            continue
        if name == RANDOM_STYLE:
            name = book.random_name(rng)
        style = book.get(name)
        if style is None:
            continue
        lines, negative_lines = style.apply(main)
        positive += lines
        negatives += negative_lines
        wrapped = wrapped or style.wraps_prompt
        applied.append(name)
    if not wrapped:
        positive.insert(0, main)
    return Workloads(
        main_prompt=main,
        positive=_non_empty([*positive, *extra], main),
        negative=_non_empty([*negatives, negative, *extra_negative], negative),
        styles=applied,
    )
