"""Textual-inversion embeddings (`embedding:name` in a prompt, Fooocus's syntax) in both SDXL text encoders.

Usage:

    embeddings = Embeddings(folders)
    prompt = embeddings.prepare(pipeline, "a cat, (embedding:my_style:1.2)")  # → "a cat, (<my_style>:1.2)"

An SDXL embedding file holds one tensor per encoder, `clip_l` (the first, 768 wide in SDXL) and `clip_g`
(the second); `load_textual_inversion` adds its vectors to each tokenizer and encoder under one token,
which the pipeline expands when it encodes the prompt. Tokens stay in the model between jobs. A name
without a file fails the job naming the file and the `embeddings` folder. Callers that build prompts
(styles, wildcards) run `prepare` on the final text, or `WorkerEngine` runs it on the request's prompts.
"""

from __future__ import annotations

import logging
import re
import weakref
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from worker.engine.folders import MissingModelError, ModelFolders

log = logging.getLogger(__name__)

EMBEDDINGS_FOLDER = "embeddings"
SUFFIXES = (".safetensors", ".pt", ".bin")
REFERENCE = re.compile(r"embedding:([A-Za-z0-9_.\-]+?)(?=$|[\s,()\[\]:])")


def referenced(text: str) -> list[str]:
    """Embedding names `text` refers to, in order, once each."""
    return list(dict.fromkeys(REFERENCE.findall(text)))


def embedding_path(folders: ModelFolders, name: str) -> Path:
    folder = folders.folder(EMBEDDINGS_FOLDER).resolve()
    for candidate in (name, *(f"{name}{suffix}" for suffix in SUFFIXES)):
        path = (folder / candidate).resolve()
        if path.is_relative_to(folder) and path.is_file():
            return path
    expected = folders.folder(EMBEDDINGS_FOLDER) / f"{name}.safetensors"
    raise MissingModelError(f"the embedding `{name}`", expected)


def token(name: str) -> str:
    return f"<{Path(name).stem}>"


class Embeddings:
    """Embeddings loaded into pipelines' text encoders, once per file and model."""

    def __init__(self, folders: ModelFolders) -> None:
        self.folders = folders
        self._loaded: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def prepare(self, pipeline: Any, text: str) -> str:
        """`text` with each `embedding:name` replaced by its token, loading what is not loaded yet."""
        names = referenced(text)
        if not names:
            return text
        loaded = self._loaded.setdefault(pipeline.text_encoder_2, set())
        for name in names:
            if name not in loaded:
                self._load(pipeline, name, embedding_path(self.folders, name))
                loaded.add(name)
        return REFERENCE.sub(lambda match: token(match.group(1)), text)

    def _load(self, pipeline: Any, name: str, path: Path) -> None:
        log.info("loading the embedding %s", path.name)
        state = load_file(path) if path.suffix == ".safetensors" else _torch_load(path)
        pairs = (("clip_l", "text_encoder", "tokenizer"), ("clip_g", "text_encoder_2", "tokenizer_2"))
        missing = [key for key, _, _ in pairs if key not in state]
        if missing:
            raise ValueError(f"the embedding `{name}` is not an SDXL embedding: it lacks {missing}")
        for key, encoder, tokenizer in pairs:
            pipeline.load_textual_inversion(
                state[key],
                token=token(name),
                text_encoder=getattr(pipeline, encoder),
                tokenizer=getattr(pipeline, tokenizer),
            )


def _torch_load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
