from __future__ import annotations

from pathlib import Path

import pytest

from worker.engine import tokenizer as tokenizer_module
from worker.engine.tokenizer import VOCAB_SIZE, build_tokenizers, vocabulary_files

CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]  # openai/clip-vit-large-patch14


def test_real_clip_vocabulary_gives_the_openai_ids(engine_cache_dir: Path) -> None:
    tokenizer, tokenizer_2 = build_tokenizers(engine_cache_dir)

    assert tokenizer("a photo of a cat").input_ids == CAT_IDS
    assert tokenizer_2("a photo of a cat").input_ids == CAT_IDS
    assert len(tokenizer) == VOCAB_SIZE
    assert tokenizer.model_max_length == tokenizer_2.model_max_length == 77


def test_sdxl_tokenizers_differ_only_in_padding(engine_cache_dir: Path) -> None:
    tokenizer, tokenizer_2 = build_tokenizers(engine_cache_dir)

    padded = tokenizer("cat", padding="max_length", max_length=77).input_ids
    padded_2 = tokenizer_2("cat", padding="max_length", max_length=77).input_ids

    assert len(padded) == len(padded_2) == 77
    assert padded[:3] == padded_2[:3] == [49406, 2368, 49407]
    assert set(padded[3:]) == {49407}  # CLIP-L pads with <|endoftext|>
    assert set(padded_2[3:]) == {0}  # bigG pads with "!" (id 0), as diffusers' SDXL tokenizer_2


def test_vocabulary_is_built_once_per_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = vocabulary_files(tmp_path)
    mtimes = [path.stat().st_mtime_ns for path in first]

    def fail(_: Path) -> None:
        raise AssertionError("rebuilt the vocabulary although it is cached")

    monkeypatch.setattr(tokenizer_module, "_build_vocabulary", fail)
    again = vocabulary_files(tmp_path)

    assert again == first
    assert [path.stat().st_mtime_ns for path in again] == mtimes
    assert first[0].parent == tmp_path / "clip-bpe"
