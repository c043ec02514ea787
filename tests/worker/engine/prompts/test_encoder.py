"""The encoding against straightforward reference computations on the tiny pipeline's own encoders."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from worker.engine.prompts.encoder import PromptEncoder, chunk_tokens, repeat_to_common_length

SHORT = "zzqxjv"  # four CLIP tokens: too long to squeeze into a chunk's last three places
LONG = "qzxqzxqzxqzxqzxqzx"  # 17 tokens: long enough to be split across chunks


def _ids(tokenizer: Any, text: str) -> torch.Tensor:
    return torch.tensor([tokenizer(text, padding="max_length", max_length=77).input_ids])


@torch.no_grad()
def _reference(
    pipeline: StableDiffusionXLPipeline, text: str, layer: int = -2
) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk, no weights: the hidden layer of both encoders side by side, and CLIP-G's pooled output."""
    out_l = pipeline.text_encoder(_ids(pipeline.tokenizer, text), output_hidden_states=True)
    out_g = pipeline.text_encoder_2(_ids(pipeline.tokenizer_2, text), output_hidden_states=True)
    return torch.cat([out_l.hidden_states[layer], out_g.hidden_states[layer]], dim=-1), out_g.text_embeds


def test_chunks_keep_words_whole_unless_long(tiny_pipeline: StableDiffusionXLPipeline) -> None:
    tokenizer = tiny_pipeline.tokenizer
    start, end = tokenizer.bos_token_id, tokenizer.eos_token_id
    cat = tokenizer("cat", add_special_tokens=False).input_ids[0]
    short = tokenizer(SHORT, add_special_tokens=False).input_ids
    long = tokenizer(LONG, add_special_tokens=False).input_ids
    assert len(short) == 4 and len(long) >= 8

    chunks = chunk_tokens(tokenizer, [("cat", 1.0)] * 72 + [(SHORT, 1.2)])
    ids = [[token for token, _ in chunk] for chunk in chunks]
    assert len(chunks) == 2 and all(len(chunk) == 77 for chunk in chunks)
    assert ids[0] == [start, *[cat] * 72, end, end, end, end]  # CLIP-L pads with its end token
    assert ids[1][:6] == [start, *short, end]
    assert [weight for _, weight in chunks[1][1:5]] == [1.2] * 4

    ids = [[t for t, _ in chunk] for chunk in chunk_tokens(tokenizer, [("cat", 1.0)] * 72 + [(LONG, 1.0)])]
    assert ids[0] == [start, *[cat] * 72, *long[:3], end]
    assert ids[1][: len(long) - 3 + 2] == [start, *long[3:], end]

    padded_2 = chunk_tokens(tiny_pipeline.tokenizer_2, [("cat", 1.0)])[0]
    assert [t for t, _ in padded_2][3:] == [0] * 74  # CLIP-G pads with "!"


def test_workloads_concatenate_tokens_and_sum_pooled(tiny_pipeline: StableDiffusionXLPipeline) -> None:
    encoder = PromptEncoder(tiny_pipeline, clip_skip=2)
    texts = ["a red cat", "a blue dog", "green grass"]
    references = [_reference(tiny_pipeline, text) for text in texts]

    cond, pooled = encoder.conditioning(texts, top_k=2)

    assert cond.shape == (1, 3 * 77, 32 + 64)
    torch.testing.assert_close(cond, torch.cat([c for c, _ in references], dim=1))
    torch.testing.assert_close(pooled, references[0][1] + references[1][1])  # a sum, the third left out


def test_long_workload_pools_its_first_chunk(tiny_pipeline: StableDiffusionXLPipeline) -> None:
    text = " ".join(["cat"] * 80)
    cond, pooled = PromptEncoder(tiny_pipeline, clip_skip=2).conditioning([text], top_k=1)
    assert cond.shape[1] == 154
    torch.testing.assert_close(cond[:, :77], _reference(tiny_pipeline, " ".join(["cat"] * 75))[0])
    torch.testing.assert_close(pooled, _reference(tiny_pipeline, " ".join(["cat"] * 75))[1])


@torch.no_grad()
def test_weights_move_away_from_the_empty_prompt_and_keep_the_mean(
    tiny_pipeline: StableDiffusionXLPipeline,
) -> None:
    cond, pooled = PromptEncoder(tiny_pipeline, clip_skip=2).conditioning(["a (red:1.5) cat"], top_k=1)

    weights = torch.ones(77)
    weights[2] = 1.5  # start token, "a", then "red"
    parts = []
    for tokenizer, encoder in (
        (tiny_pipeline.tokenizer, tiny_pipeline.text_encoder),
        (tiny_pipeline.tokenizer_2, tiny_pipeline.text_encoder_2),
    ):
        z = encoder(_ids(tokenizer, "a red cat"), output_hidden_states=True).hidden_states[-2][0]
        empty = encoder(_ids(tokenizer, ""), output_hidden_states=True).hidden_states[-2][0]
        weighted = (z - empty) * weights[:, None] + empty
        parts.append(weighted * (z.mean() / weighted.mean()))
    torch.testing.assert_close(cond[0], torch.cat(parts, dim=-1))
    torch.testing.assert_close(pooled, _reference(tiny_pipeline, "a red cat")[1])  # pooled is unweighted
    assert not torch.allclose(cond, _reference(tiny_pipeline, "a red cat")[0])


@pytest.mark.parametrize("clip_skip", [1, 3, 30])
@torch.no_grad()
def test_clip_skip_picks_the_layer(tiny_pipeline: StableDiffusionXLPipeline, clip_skip: int) -> None:
    cond, _ = PromptEncoder(tiny_pipeline, clip_skip=clip_skip).conditioning(["a cat"], top_k=1)
    default, _ = PromptEncoder(tiny_pipeline, clip_skip=2).conditioning(["a cat"], top_k=1)

    out_l = tiny_pipeline.text_encoder(_ids(tiny_pipeline.tokenizer, "a cat"), output_hidden_states=True)
    out_g = tiny_pipeline.text_encoder_2(_ids(tiny_pipeline.tokenizer_2, "a cat"), output_hidden_states=True)
    if clip_skip == 1:  # the last layer, CLIP-L with its final LayerNorm, CLIP-G without
        expected = [out_l.last_hidden_state, out_g.hidden_states[-1]]
    elif clip_skip == 30:  # deeper than the encoders: their final output
        expected = [out_l.last_hidden_state, out_g.last_hidden_state]
    else:
        expected = [out_l.hidden_states[-clip_skip], out_g.hidden_states[-clip_skip]]
    torch.testing.assert_close(cond, torch.cat(expected, dim=-1))
    assert not torch.allclose(cond, default)


def test_lengths_repeat_to_their_least_common_multiple() -> None:
    a, b = torch.randn(1, 154, 8), torch.randn(1, 231, 8)
    long_a, long_b = repeat_to_common_length(a, b)
    assert long_a.shape == long_b.shape == (1, 462, 8)
    torch.testing.assert_close(long_a, torch.cat([a, a, a], dim=1))
    torch.testing.assert_close(long_b, torch.cat([b, b], dim=1))


def test_embeddings_pad_both_sides_and_encode_an_empty_negative(
    tiny_pipeline: StableDiffusionXLPipeline,
) -> None:
    encoder = PromptEncoder(tiny_pipeline, clip_skip=2)
    out = encoder.embeddings(["a cat", "a dog"], [""], positive_top_k=2, negative_top_k=1, guidance_scale=4.0)
    empty, empty_pooled = _reference(tiny_pipeline, "")
    assert out["prompt_embeds"].shape == out["negative_prompt_embeds"].shape == (1, 154, 96)
    torch.testing.assert_close(out["negative_prompt_embeds"], torch.cat([empty, empty], dim=1))
    torch.testing.assert_close(out["negative_pooled_prompt_embeds"], empty_pooled)
    assert out["negative_prompt_embeds"].abs().sum() > 0  # "" is not zeros


def test_without_cfg_the_negative_is_the_positive(tiny_pipeline: StableDiffusionXLPipeline) -> None:
    encoder = PromptEncoder(tiny_pipeline, clip_skip=2)
    out = encoder.embeddings(
        ["a cat"], ["ugly", "blurry"], positive_top_k=1, negative_top_k=2, guidance_scale=1.0
    )
    assert set(encoder._cache) == {"a cat"}  # the negative was never encoded
    assert torch.equal(out["negative_prompt_embeds"], out["prompt_embeds"])
    assert torch.equal(out["negative_pooled_prompt_embeds"], out["pooled_prompt_embeds"])


def test_identical_workloads_are_encoded_once(tiny_pipeline: StableDiffusionXLPipeline) -> None:
    encoder = PromptEncoder(tiny_pipeline, clip_skip=2)
    calls = 0
    original = tiny_pipeline.text_encoder.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    tiny_pipeline.text_encoder.forward = counting  # type: ignore[method-assign]
    try:
        encoder.embeddings(
            ["a cat", "a cat"], ["a cat"], positive_top_k=2, negative_top_k=1, guidance_scale=3.0
        )
        encoder.embeddings(["a cat"], ["ugly"], positive_top_k=1, negative_top_k=1, guidance_scale=3.0)
    finally:
        del tiny_pipeline.text_encoder.forward
    assert calls == 2  # "a cat" and "ugly"
