from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from worker.engine.prompts.styles import StyleBook
from worker.engine.prompts.wildcards import Wildcards
from worker.engine.prompts.workloads import build_workloads

STYLES = [
    {
        "name": "Wrap",
        "prompt": "wrapped {prompt}\nsecond line of {prompt}",
        "negative_prompt": "wrap bad\nwrap worse",
    },
    {"name": "Suffix", "prompt": "golden light", "negative_prompt": "suffix bad"},
    {"name": "Negative Only", "prompt": "", "negative_prompt": "ugly"},
]


@pytest.fixture
def book(tmp_path: Path) -> StyleBook:
    folder = tmp_path / "styles"
    folder.mkdir()
    (folder / "test.json").write_text(json.dumps(STYLES))
    return StyleBook(folder)


def _build(book: StyleBook, prompt: str, negative: str, styles: list[str], **kwargs: object):
    options = {"seed": 1, "index": 0, "book": book, "wildcards": Wildcards(None), **kwargs}
    return build_workloads(prompt, negative, styles, **options)  # type: ignore[arg-type]


def test_no_style_is_the_prompt_then_extra_lines(book: StyleBook) -> None:
    work = _build(book, "a cat.\nextra one,\n\nextra two", "blurry\nnoisy", [])
    assert work.positive == ["a cat", "extra one", "extra two"]
    assert work.negative == ["blurry", "noisy"]
    assert (work.positive_top_k, work.negative_top_k) == (3, 2)


def test_a_wrapping_style_replaces_the_raw_prompt(book: StyleBook) -> None:
    work = _build(book, "a cat\nextra", "user bad", ["Wrap", "Negative Only"])
    assert work.positive == ["wrapped a cat", "second line of a cat", "extra"]
    # Style negatives in style order, then the user's negative.
    assert work.negative == ["wrap bad", "wrap worse", "ugly", "user bad"]
    assert work.styles == ["Wrap", "Negative Only"]


def test_without_any_placeholder_the_raw_prompt_goes_first(book: StyleBook) -> None:
    work = _build(book, "a cat", "", ["Suffix", "Negative Only", "Fooocus V2", "Unknown Style"])
    assert work.positive == ["a cat", "golden light"]
    assert work.negative == ["suffix bad", "ugly"]  # the empty user negative is dropped
    assert work.styles == ["Suffix", "Negative Only"]


def test_empty_texts_are_removed_but_one_stays(book: StyleBook) -> None:
    work = _build(book, "", "", [])
    assert work.positive == [""] and work.negative == [""]  # encoded as "" (never zeros)
    work = _build(book, "", "", ["Negative Only"])
    assert work.positive == [""] and work.negative == ["ugly"]


def test_random_style_is_drawn_per_image_from_the_seed(book: StyleBook) -> None:
    picks = {_build(book, "a cat", "", ["Random Style"], seed=seed).styles[0] for seed in range(12)}
    assert len(picks) > 1
    first = _build(book, "a cat", "", ["Random Style"], seed=5)
    assert first.styles == [book.random_name(random.Random(5))]
    assert first == _build(book, "a cat", "", ["Random Style"], seed=5)


def test_wildcards_share_the_image_rng_and_arrays_use_the_index(tmp_path: Path, book: StyleBook) -> None:
    folder = tmp_path / "wildcards"
    folder.mkdir()
    (folder / "color.txt").write_text("red\ngreen\nblue\n")
    wildcards = Wildcards(folder)
    prompt, negative = "a __color__ [[cat,dog]]\nin __color__", "__color__ blur"

    work = _build(book, prompt, negative, [], seed=3, index=1, wildcards=wildcards)
    rng = random.Random(3)  # main prompt, negative, then the extra lines draw in turn
    main, neg, extra = (
        rng.choice(["red", "green", "blue"]),
        rng.choice(["red", "green", "blue"]),
        rng.choice(["red", "green", "blue"]),
    )
    assert work.positive == [f"a {main} dog", f"in {extra}"]
    assert work.negative == [f"{neg} blur"]

    ordered = _build(book, prompt, negative, [], seed=3, index=2, wildcards=wildcards, in_order=True)
    assert ordered.positive == ["a blue cat", "in blue"]
