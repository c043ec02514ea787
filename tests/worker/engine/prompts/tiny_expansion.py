"""A tiny random GPT-2 and byte-level BPE tokenizer in Fooocus's `fooocus_expansion` folder layout,
built locally (no download) for the Fooocus V2 tests."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

from worker.engine.prompts.expansion import EXPANSION_FOLDER

ALLOWED = [
    "sunny", "bright", "vivid", "misty", "golden", "serene", "dramatic", "gentle", "elegant", "cozy",
    "ornate", "lush", "crisp", "radiant", "calm", "rustic", "moody", "sharp", "airy", "rich",
]  # fmt: skip
OTHERS = ["cat", "dog", "house", "tree", "river", "photo", "of", "a", "the", "in", "street", "blue"]
EOS = "<|endoftext|>"


def write_tiny_expansion(models_dir: Path, *, seed: int = 0) -> Path:
    """Write the folder under `models_dir` and return it."""
    folder = models_dir / EXPANSION_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    corpus = [" " + " ".join(ALLOWED + OTHERS) + ","] * 50  # each word after a space, as `Ġword`
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=400, min_frequency=1, special_tokens=[EOS], show_progress=False
    )
    bpe.save(str(folder / "tokenizer.json"))
    tokenizer = GPT2TokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), eos_token=EOS)
    for word in ALLOWED:  # each allowed word must be one ` word` token, as in Fooocus's vocabulary
        assert len(tokenizer(" " + word).input_ids) == 1, word
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=160, n_embd=32, n_layer=2, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    (folder / "positive.txt").write_text("\n".join(word.capitalize() for word in ALLOWED) + "\n")
    return folder
