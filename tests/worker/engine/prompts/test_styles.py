from __future__ import annotations

import json
import random
from pathlib import Path

from contracts.styles import STYLE_NAMES
from worker.engine.prompts.styles import (
    BUILTIN_FILES,
    BUILTIN_FOLDER,
    EXPANSION_STYLE,
    RANDOM_STYLE,
    StyleBook,
    normalize_style_name,
)


def test_every_offered_style_name_resolves() -> None:
    book = StyleBook()
    pseudo = {EXPANSION_STYLE, RANDOM_STYLE}
    assert all(name in book for name in STYLE_NAMES)
    assert all(book.get(name) is not None for name in STYLE_NAMES if name not in pseudo)
    # The built-in files list the styles in the order Fooocus offers them, with nothing extra.
    assert list(book.styles) == [name for name in STYLE_NAMES if name not in pseudo]


def test_builtin_files_are_in_fooocus_format() -> None:
    for name in BUILTIN_FILES:
        entries = json.loads((BUILTIN_FOLDER / name).read_text())
        assert entries
        for entry in entries:
            assert set(entry) == {"name", "prompt", "negative_prompt"}
            assert entry["prompt"] == "" or "{prompt}" in entry["prompt"], entry["name"]


def test_fooocus_styles_behave_as_documented() -> None:
    book = StyleBook()
    for negative_only in ("Fooocus Enhance", "Fooocus Semi Realistic", "Fooocus Negative"):
        style = book.get(negative_only)
        assert style is not None and style.prompt == "" and style.negative
        assert not style.wraps_prompt
    for wrapping in ("Fooocus Sharp", "Fooocus Masterpiece", "Fooocus Photograph", "Fooocus Cinematic"):
        style = book.get(wrapping)
        assert style is not None and style.wraps_prompt and style.negative
    pony = book.get("Fooocus Pony")
    assert pony is not None and pony.apply("a horse") == (
        ["score_9, score_8_up, score_7_up, a horse"],
        ["score_6, score_5, score_4"],
    )


def test_names_are_normalized_like_fooocus() -> None:
    assert normalize_style_name("sai-3d-model") == "SAI 3D Model"
    assert normalize_style_name("mre-dark-cyberpunk") == "MRE Dark Cyberpunk"
    assert normalize_style_name("ARTSTYLE watercolor") == "Artstyle Watercolor"


def test_user_files_add_and_override_by_normalized_name(tmp_path: Path) -> None:
    folder = tmp_path / "styles"
    folder.mkdir()
    (folder / "a.json").write_text(
        json.dumps(
            [
                {"name": "sai-anime", "prompt": "mine {prompt}", "negative_prompt": "not mine"},
                {"name": "my style", "prompt": "custom, {prompt}", "negative_prompt": ""},
            ]
        )
    )
    (folder / "b.json").write_text(json.dumps([{"name": "My Style", "prompt": "later {prompt}"}]))
    (folder / "broken.json").write_text("{not json")

    book = StyleBook(folder)
    anime = book.get("SAI Anime")
    assert anime is not None and anime.apply("x") == (["mine x"], ["not mine"])
    mine = book.get("My Style")
    assert (
        mine is not None and mine.prompt == "later {prompt}" and mine.negative == ""
    )  # b.json loads after a.json
    assert book.get("SAI Cinematic") == StyleBook().get("SAI Cinematic")  # the rest stay built in


def test_random_style_draws_from_the_seeded_rng_in_file_order() -> None:
    book = StyleBook()
    assert book.random_name(random.Random(7)) == random.Random(7).choice(list(book.styles))
    assert len({book.random_name(random.Random(seed)) for seed in range(10)}) > 1
