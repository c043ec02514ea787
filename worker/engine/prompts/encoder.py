"""Workloads → SDXL conditioning tensors, encoded as Fooocus's ComfyUI code does (fooocus-engine.md §4.1).

- Each workload is tokenized on its own, word by word, with both of the pipeline's tokenizers, into
  77-token chunks (start, 75 tokens, end, padding). A word that would cross a chunk border moves to the
  next chunk whole, unless it is `LONG_WORD` tokens or more, which are split.
- Each chunk runs through CLIP-L and CLIP-G; the hidden state at layer `-clip_skip` is taken (CLIP skip
  2 is SDXL's penultimate layer; 1 is the last layer, with CLIP-L's final LayerNorm). Weighted tokens
  move away from the empty prompt's encoding, `z = (z - z_empty) * w + z_empty`, and the chunk is then
  rescaled to its original mean.
- A workload's tokens are its chunks concatenated; CLIP-L and CLIP-G features are concatenated (2048
  for SDXL). The conditioning is every workload's tokens concatenated; the pooled embedding is the SUM
  of the CLIP-G pooled outputs of the first chunk of the first `top_k` workloads.
- Positive and negative are repeated up to the least common multiple of their lengths (repetition does
  not change attention's result, and diffusers needs equal shapes).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from worker.engine.prompts.syntax import weighted_words

MAX_LENGTH = 77
LONG_WORD = 8  # words of this many tokens or more may be split across chunks
# Fooocus treats a CFG this close to 1 as "no negative": the positive stands in for it.
NO_CFG_TOLERANCE = 1e-4

Chunk = list[tuple[int, float]]


def chunk_tokens(tokenizer: Any, words: list[tuple[str, float]]) -> list[Chunk]:
    """`(word, weight)` pairs → 77-long `(token id, weight)` chunks for one tokenizer."""
    start, end, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    room = MAX_LENGTH - 2
    chunks: list[Chunk] = []
    body: Chunk = []

    def close() -> None:
        chunks.append([(start, 1.0), *body, (end, 1.0)] + [(pad, 1.0)] * (room - len(body)))
        body.clear()

    for word, weight in words:
        tokens = [(token, weight) for token in tokenizer(word, add_special_tokens=False)["input_ids"]]
        long_word = len(tokens) >= LONG_WORD
        while tokens:
            if len(body) + len(tokens) <= room:
                body.extend(tokens)
                break
            if long_word:  # fill this chunk with the word's head, continue with the rest
                free = room - len(body)
                body.extend(tokens[:free])
                tokens = tokens[free:]
            close()
    close()
    return chunks


def _layer(output: Any, encoder: Any, clip_skip: int, norm_last: bool) -> torch.Tensor:
    """Hidden states at layer `-clip_skip`; past the first layer, the encoder's normed last output."""
    if clip_skip > encoder.config.num_hidden_layers:
        return output.last_hidden_state
    hidden = output.hidden_states[-clip_skip]
    if clip_skip == 1 and norm_last:
        model = getattr(encoder, "text_model", encoder)  # nested before transformers 5
        hidden = model.final_layer_norm(hidden)
    return hidden


def _apply_weights(z: torch.Tensor, empty: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111/Kohya weighting of one chunk `z` (tokens × features) against the empty prompt's encoding."""
    z = z.float()
    original_mean = z.mean()
    empty = empty.float()
    weighted = (z - empty) * weights[:, None] + empty
    return weighted * (original_mean / weighted.mean())


class PromptEncoder:
    """Encodes workloads with one pipeline's tokenizers and text encoders; identical texts once each."""

    def __init__(self, pipeline: Any, clip_skip: int, device: torch.device | None = None) -> None:
        self.tokenizers = (pipeline.tokenizer, pipeline.tokenizer_2)
        self.encoders = (pipeline.text_encoder, pipeline.text_encoder_2)
        self.clip_skip = clip_skip
        # Where the engine runs the models (`device`): under offload the encoders rest on the CPU
        # between calls, so their own device says nothing.
        self.device = device if device is not None else pipeline.text_encoder_2.device
        self.dtype = pipeline.text_encoder_2.dtype
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _encode_one(
        self, index: int, words: list[tuple[str, float]]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        tokenizer, encoder = self.tokenizers[index], self.encoders[index]
        chunks = chunk_tokens(tokenizer, words)
        weighted = any(weight != 1.0 for chunk in chunks for _, weight in chunk)
        rows = [[token for token, _ in chunk] for chunk in chunks]
        if weighted:
            rows.append([token for token, _ in chunk_tokens(tokenizer, [])[0]])  # the empty prompt
        ids = torch.tensor(rows, device=self.device)
        output = encoder(ids, output_hidden_states=True)
        hidden = _layer(output, encoder, self.clip_skip, norm_last=index == 0)
        pooled = output.text_embeds[0:1] if index == 1 else None
        parts = []
        for k, chunk in enumerate(chunks):
            z = hidden[k]
            if weighted:
                weights = torch.tensor([weight for _, weight in chunk], device=z.device)
                z = _apply_weights(z, hidden[-1], weights)
            parts.append(z.to(self.dtype))
        return torch.cat(parts, dim=0)[None], pooled

    @torch.no_grad()
    def encode_text(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One workload → (1 × tokens × 2048 conditioning, 1 × 1280 CLIP-G pooled of its first chunk)."""
        if text not in self._cache:
            words = weighted_words(text)
            clip_l, _ = self._encode_one(0, words)
            clip_g, pooled = self._encode_one(1, words)
            length = min(clip_l.shape[1], clip_g.shape[1])
            cond = torch.cat([clip_l[:, :length], clip_g[:, :length].to(clip_l)], dim=-1)
            assert pooled is not None
            self._cache[text] = (cond.to(self.device), pooled.to(self.device, self.dtype))
        return self._cache[text]

    def conditioning(self, texts: list[str], top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Workloads → (their tokens concatenated, the sum of the first `top_k` pooled embeddings)."""
        encoded = [self.encode_text(text) for text in texts]
        cond = torch.cat([c for c, _ in encoded], dim=1)
        pooled = torch.stack([p for _, p in encoded[: max(top_k, 1)]]).sum(dim=0)
        return cond, pooled

    def embeddings(
        self,
        positive: list[str],
        negative: list[str],
        *,
        positive_top_k: int,
        negative_top_k: int,
        guidance_scale: float,
    ) -> dict[str, torch.Tensor]:
        """The four embedding arguments of a diffusers SDXL pipeline call."""
        cond, pooled = self.conditioning(positive, positive_top_k)
        if abs(guidance_scale - 1.0) < NO_CFG_TOLERANCE:
            uncond, negative_pooled = cond, pooled  # no CFG: the negative is never looked at
        else:
            uncond, negative_pooled = self.conditioning(negative, negative_top_k)
        cond, uncond = repeat_to_common_length(cond, uncond)
        return {
            "prompt_embeds": cond,
            "pooled_prompt_embeds": pooled,
            "negative_prompt_embeds": uncond,
            "negative_pooled_prompt_embeds": negative_pooled,
        }


def repeat_to_common_length(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat each along the token axis up to the least common multiple of their lengths."""
    length = math.lcm(a.shape[1], b.shape[1])
    return a.repeat(1, length // a.shape[1], 1), b.repeat(1, length // b.shape[1], 1)
