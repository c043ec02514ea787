"""The `Fooocus V2` style: a GPT-2 model extends the main prompt with words from a fixed list
(fooocus-engine.md §8).

The files are Fooocus's `models/prompt_expansion/fooocus_expansion/` folder, placed under the worker's
models folder: `config.json`, the tokenizer files, `pytorch_model.bin` (or `model.safetensors`) and
`positive.txt`, one allowed word per line. Sampling is restricted to those words (as ` word` tokens)
and the comma, never repeats a token already in the text, draws from the top 100 with the torch RNG
seeded by `seed % 2**32`, and stops at the next multiple of 75 GPT-2 tokens.

When files are missing (`missing_files`), the planner skips the expansion,
saying so in the job's metadata (`prompt_expansion_skipped`) and the worker log; a job never fails for it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2LMHeadModel, LogitsProcessor, LogitsProcessorList

from worker.engine.prompts.syntax import clean_line

EXPANSION_FOLDER = Path("prompt_expansion") / "fooocus_expansion"
WORD_LIST = "positive.txt"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
BLOCKED = -8192.0  # Fooocus's bias for every token outside the word list
TOKEN_BLOCK = 75
TOP_K = 100
SEED_MODULUS = 2**32


def missing_files(folder: Path) -> list[str]:
    """The files of `folder` that the expansion needs and cannot find (empty when it can run)."""
    missing = [name for name in ("config.json", WORD_LIST) if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    return missing


class _WordListBias(LogitsProcessor):
    """Adds `allowed` (0 for list words and the comma, `BLOCKED` elsewhere) and blocks tokens already used."""

    def __init__(self, allowed: torch.Tensor, comma: int) -> None:
        self.allowed = allowed
        self.comma = comma

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        bias = self.allowed.to(scores).expand_as(scores).clone()
        bias.scatter_(1, input_ids.long(), BLOCKED)
        bias[:, self.comma] = 0.0  # commas separate the words and may repeat
        return scores + bias


class PromptExpansion:
    """A loaded expansion model; call it with the main prompt and the image's seed."""

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = GPT2LMHeadModel.from_pretrained(folder, local_files_only=True, dtype=dtype)
        self.model.to(device).eval()
        words = (folder / WORD_LIST).read_text(encoding="utf-8").splitlines()
        wanted = {"Ġ" + word.strip().lower() for word in words if word.strip()}
        vocab = self.tokenizer.get_vocab()
        allowed = torch.full((1, self.model.config.vocab_size), BLOCKED)
        allowed[0, [index for token, index in vocab.items() if token in wanted]] = 0.0
        self.comma = vocab[","]
        self.bias = _WordListBias(allowed, self.comma)

    @torch.inference_mode()
    def __call__(self, prompt: str, seed: int) -> str:
        """`prompt` followed by `, word, word, …`; the same prompt and seed always give the same text."""
        if not prompt:
            return ""
        text = clean_line(prompt) + ","
        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)
        length = int(inputs["input_ids"].shape[1])
        new_tokens = TOKEN_BLOCK * math.ceil(length / TOKEN_BLOCK) - length
        if new_tokens == 0:
            return text[:-1]
        # The seed drives the sampler through the global torch RNG; fork it so the worker's state is kept.
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed % SEED_MODULUS)
            output = self.model.generate(
                **inputs,
                do_sample=True,
                top_k=TOP_K,
                max_new_tokens=new_tokens,
                logits_processor=LogitsProcessorList([self.bias]),
                pad_token_id=self.tokenizer.eos_token_id,
            )
        return clean_line(self.tokenizer.decode(output[0], skip_special_tokens=True))
