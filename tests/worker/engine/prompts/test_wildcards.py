from __future__ import annotations

import random
from pathlib import Path

import pytest

from worker.engine.prompts.wildcards import Wildcards

COLORS = ["red", "green", "blue", "amber", "violet"]


@pytest.fixture
def wildcards(tmp_path: Path) -> Wildcards:
    folder = tmp_path / "wildcards"
    (folder / "nested").mkdir(parents=True)
    (folder / "color.txt").write_text("\n".join(COLORS) + "\n\n")
    (folder / "nested" / "Animal.txt").write_text("__color__ cat\n")
    return Wildcards(folder)


def test_seeded_draws_follow_random_random_of_the_seed(wildcards: Wildcards) -> None:
    text = "a __color__ hat and a __color__ coat"
    reference = random.Random(99)
    expected = f"a {reference.choice(COLORS)} hat and a {reference.choice(COLORS)} coat"

    assert wildcards.apply(text, random.Random(99), 0, in_order=False) == expected
    draws = {wildcards.apply(text, random.Random(seed), 0, in_order=False) for seed in range(20)}
    assert len(draws) > 1  # the seed matters


def test_in_order_takes_the_line_of_the_image_index(wildcards: Wildcards) -> None:
    picks = [wildcards.apply("__color__", random.Random(1), index, in_order=True) for index in range(7)]
    assert picks == [*COLORS, COLORS[0], COLORS[1]]


def test_nested_and_case_insensitive_and_missing(wildcards: Wildcards) -> None:
    assert wildcards.apply("__animal__", random.Random(0), 2, in_order=True) == "blue cat"
    assert wildcards.apply("__nested/animal__", random.Random(0), 0, in_order=True) == "red cat"
    assert wildcards.apply("a __nothing__ here", random.Random(0), 0, in_order=False) == "a nothing here"
    assert Wildcards(None).apply("__color__", random.Random(0), 0, in_order=False) == "color"
