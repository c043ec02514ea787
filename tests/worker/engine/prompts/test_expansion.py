from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from tests.worker.engine.prompts.tiny_expansion import ALLOWED, OTHERS, write_tiny_expansion
from worker.engine.prompts import PromptEngine
from worker.engine.prompts.expansion import PromptExpansion, missing_files

# About 60 GPT-2 tokens: the expansion then fills only the last few up to 75, which keeps tests fast.
PROMPT = " ".join(OTHERS * 5)


@pytest.fixture(scope="module")
def expansion_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("expansion-models")
    write_tiny_expansion(models)
    return models


@pytest.fixture(scope="module")
def expansion(expansion_models: Path) -> PromptExpansion:
    folder = expansion_models / "prompt_expansion" / "fooocus_expansion"
    return PromptExpansion(folder, torch.device("cpu"), torch.float32)


def _added_words(prompt: str, expanded: str) -> list[str]:
    assert expanded.startswith(prompt + ",")
    return expanded[len(prompt) + 1 :].replace(",", " ").split()


def test_same_seed_same_text_other_seed_other_text(expansion: PromptExpansion) -> None:
    first = expansion(PROMPT, 12345)
    assert first == expansion(PROMPT, 12345)
    others = {expansion(PROMPT, seed) for seed in range(1, 6)}
    assert len(others - {first}) >= 4


def test_only_listed_words_are_added_never_twice(expansion: PromptExpansion) -> None:
    for seed in range(4):
        added = _added_words(PROMPT, expansion(PROMPT, seed + 2**40))  # seeds beyond 2**32 wrap
        assert added, "nothing was added"
        assert set(added) <= set(ALLOWED)
        assert len(added) == len(set(added))


def test_fills_to_the_next_multiple_of_75_tokens(expansion: PromptExpansion) -> None:
    expanded = expansion(PROMPT, 3)
    prompt_length = len(expansion.tokenizer("a cat,").input_ids)
    # Every allowed word is one token, each comma too; the text is cleaned of trailing commas.
    assert len(expansion.tokenizer(expanded).input_ids) <= 75 * math.ceil(prompt_length / 75)
    assert expansion("", 3) == ""


def test_seeding_leaves_the_global_rng_alone(expansion: PromptExpansion) -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    expansion(PROMPT, 1)
    assert torch.equal(torch.rand(3), expected)


def test_plan_appends_the_expansion_outside_pooled(
    expansion_models: Path, tiny_pipeline: StableDiffusionXLPipeline
) -> None:
    prompts = PromptEngine(expansion_models)
    plain = prompts.plan(PROMPT, "", ["Fooocus Sharp"], seed=9)
    plan = prompts.plan(PROMPT, "", ["Fooocus V2", "Fooocus Sharp"], seed=9)

    assert plan.positive[:-1] == plain.positive and plan.positive_top_k == plain.positive_top_k == 1
    assert plan.positive[-1] == plan.expansion and set(_added_words(PROMPT, plan.expansion)) <= set(ALLOWED)
    assert plan.metadata()["prompt_expansion"] == plan.expansion
    assert prompts.plan(PROMPT, "", ["Fooocus V2"], seed=10).expansion != plan.expansion
    assert prompts.plan("", "", ["Fooocus V2"], seed=9).expansion == ""  # no prompt, no expansion

    with_v2 = prompts.embeddings(tiny_pipeline, plan, clip_skip=2, guidance_scale=4.0, job=object())
    without = prompts.embeddings(tiny_pipeline, plain, clip_skip=2, guidance_scale=4.0, job=object())
    length = without["prompt_embeds"].shape[1]
    assert with_v2["prompt_embeds"].shape[1] > length  # one more workload's tokens, at the end
    torch.testing.assert_close(with_v2["prompt_embeds"][:, :length], without["prompt_embeds"])
    torch.testing.assert_close(with_v2["pooled_prompt_embeds"], without["pooled_prompt_embeds"])


def test_missing_model_skips_the_expansion_and_says_so(tmp_path: Path) -> None:
    plan = PromptEngine(tmp_path).plan(PROMPT, "", ["Fooocus V2"], seed=1)
    assert plan.expansion == "" and plan.positive == [PROMPT]
    assert "fooocus_expansion" in plan.expansion_skipped and "config.json" in plan.expansion_skipped
    assert plan.metadata()["prompt_expansion_skipped"] == plan.expansion_skipped
    json.dumps(plan.metadata())  # it goes into the image's metadata as JSON
    assert set(missing_files(tmp_path)) == {
        "config.json",
        "positive.txt",
        "model.safetensors or pytorch_model.bin",
    }
    assert PromptEngine(None).plan(PROMPT, "", ["Fooocus V2"], seed=1).expansion_skipped


def test_seed_is_reduced_modulo_2_32(expansion: PromptExpansion) -> None:
    assert expansion(PROMPT, 5) == expansion(PROMPT, 5 + 2**32)
    random.seed(0)  # unrelated state is never consulted
    assert expansion(PROMPT, 5) == expansion(PROMPT, 5 + 2**33)
