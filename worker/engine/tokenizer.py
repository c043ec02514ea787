"""SDXL's two CLIP tokenizers, built offline from the BPE vocabulary that open-clip-torch ships.

SDXL checkpoints carry no tokenizer and the worker cannot reach the Hugging Face hub, but
`open_clip/bpe_simple_vocab_16e6.txt.gz` is the very vocabulary of openai/clip-vit-large-patch14.
We turn it into the `vocab.json`/`merges.txt` pair `transformers.CLIPTokenizer` reads, once per cache
folder (about 5 s), and locate the file without importing `open_clip` (its import needs torchvision).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import tempfile
from pathlib import Path

from transformers import CLIPTokenizer

MODEL_MAX_LENGTH = 77
VOCAB_SIZE = 49408
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
# CLIP's vocabulary is the 256 byte characters, the same with `</w>`, then one token per merge, then the
# two specials: 512 + 48,894 + 2 = 49,408. The file holds more merges than CLIP used.
_MERGE_COUNT = VOCAB_SIZE - 512 - 2
# diffusers' SDXL `tokenizer_2` (laion's bigG) pads with "!" (id 0); `tokenizer` pads with the end token.
PAD_TOKEN_2 = "!"
_CACHE_SUBDIR = "clip-bpe"


def bpe_vocabulary_path() -> Path:
    """Where open-clip-torch keeps `bpe_simple_vocab_16e6.txt.gz`, found without importing it."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open-clip-torch is not installed: it carries the CLIP BPE vocabulary")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the open-clip-torch install")
    return path


def _byte_characters() -> list[str]:
    """The 256 printable stand-ins for raw bytes, in GPT-2/CLIP order (this order fixes the token ids)."""
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = {byte: chr(byte) for byte in visible}
    # Bytes without a visible glyph (space, control codes) get code points from 256 up, in byte order.
    hidden = [byte for byte in range(256) if byte not in characters]
    characters.update({byte: chr(256 + n) for n, byte in enumerate(hidden)})
    return list(characters.values())


def _build_vocabulary(bpe_path: Path) -> tuple[dict[str, int], list[str]]:
    with gzip.open(bpe_path, "rt", encoding="utf-8") as source:
        lines = source.read().split("\n")
    merges = lines[1 : 1 + _MERGE_COUNT]  # line 0 is a version header
    base = _byte_characters()
    tokens = [*base, *(c + "</w>" for c in base), *(m.replace(" ", "") for m in merges), BOS_TOKEN, EOS_TOKEN]
    return {token: i for i, token in enumerate(tokens)}, merges


def _write_atomically(path: Path, text: str) -> None:
    # Several workers may share a cache folder: a reader never sees a half-written file.
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def vocabulary_files(cache_dir: Path) -> tuple[Path, Path]:
    """`(vocab.json, merges.txt)` in `cache_dir/clip-bpe`, built on first use."""
    folder = cache_dir / _CACHE_SUBDIR
    vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
    if not (vocab_path.is_file() and merges_path.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        vocab, merges = _build_vocabulary(bpe_vocabulary_path())
        _write_atomically(merges_path, "#version: 0.2\n" + "\n".join(merges) + "\n")
        _write_atomically(vocab_path, json.dumps(vocab, ensure_ascii=False))
    return vocab_path, merges_path


def build_tokenizers(cache_dir: Path) -> tuple[CLIPTokenizer, CLIPTokenizer]:
    """SDXL's `(tokenizer, tokenizer_2)`: one vocabulary, padded with `<|endoftext|>` and `!` respectively."""
    vocab_path, merges_path = vocabulary_files(cache_dir)

    def make(pad_token: str) -> CLIPTokenizer:
        return CLIPTokenizer(
            vocab=str(vocab_path),
            merges=str(merges_path),
            pad_token=pad_token,
            model_max_length=MODEL_MAX_LENGTH,
        )

    return make(EOS_TOKEN), make(PAD_TOKEN_2)


def write_tokenizers(cache_dir: Path, config_dir: Path) -> None:
    """Save both tokenizers as `config_dir/tokenizer` and `config_dir/tokenizer_2` (diffusers layout)."""
    tokenizer, tokenizer_2 = build_tokenizers(cache_dir)
    tokenizer.save_pretrained(config_dir / "tokenizer")
    tokenizer_2.save_pretrained(config_dir / "tokenizer_2")
