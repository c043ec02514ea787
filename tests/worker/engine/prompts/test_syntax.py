from __future__ import annotations

import pytest

from worker.engine.prompts.syntax import (
    apply_arrays,
    clean_line,
    extract_loras,
    parse_weights,
    split_lines,
    weighted_words,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("a (red:1.5) cat", [("a ", 1.0), ("red", 1.5), (" cat", 1.0)]),
        ("(red)", [("red", 1.1)]),
        ("((red))", [("red", 1.1 * 1.1)]),
        # An explicit weight replaces the surrounding one instead of multiplying it.
        ("((red:0.5))", [("red", 0.5)]),
        ("(big (red:2) ball)", [("big ", 1.1), ("red", 2.0), (" ball", 1.1)]),
        ("(time: dusk)", [("time: dusk", 1.1)]),  # not a number: the colon is text
        (r"a \(b\) c", [("a (b) c", 1.0)]),
        (r"(\(b\):1.3)", [("(b)", 1.3)]),
        ("a (b c", [("a ", 1.0), ("(b c", 1.0)]),  # unbalanced: literal text, weight 1
    ],
)
def test_weights_follow_comfyui(text: str, expected: list[tuple[str, float]]) -> None:
    got = parse_weights(text)
    assert [part for part, _ in got] == [part for part, _ in expected]
    assert [weight for _, weight in got] == pytest.approx([weight for _, weight in expected])


def test_weighted_words_split_on_spaces_and_keep_weights() -> None:
    assert weighted_words("a  (red hat:1.2),\nnow") == [
        ("a", 1.0),
        ("red", 1.2),
        ("hat", 1.2),
        (",", 1.0),
        ("now", 1.0),
    ]


def test_lines_are_cleaned_and_empty_ones_dropped() -> None:
    assert clean_line("  a   cat,. ") == "a cat"
    assert split_lines("a cat.\n\n , \nsecond line,\r\n") == ["a cat", "second line"]
    assert split_lines("") == [""]
    assert split_lines(" ,.\n") == [""]


def test_inline_loras_are_removed_and_returned_in_order() -> None:
    text, loras = extract_loras("a cat <lora:pixel-art:0.8>, <lora:sd_xl_offset:-.5> in snow <lora:bad:x>")
    assert loras == [("pixel-art", 0.8), ("sd_xl_offset", -0.5)]
    assert text == "a cat ,  in snow <lora:bad:x>"


def test_arrays_pick_by_image_index_through_every_combination() -> None:
    text = "a [[red, blue]] [[cat,dog,owl]]"
    picks = [apply_arrays(text, index) for index in range(7)]
    assert picks == [
        "a red cat",
        "a blue cat",
        "a red dog",
        "a blue dog",
        "a red owl",
        "a blue owl",
        "a red cat",  # index 6 wraps around
    ]
    assert apply_arrays("no arrays [here]", 3) == "no arrays [here]"
