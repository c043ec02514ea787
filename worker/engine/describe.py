"""Describe an image: a BLIP caption (Photo) or WD14 tags (Anime), from `models/captioners/`.

Photo follows Fooocus's BLIP call (fooocus-engine.md §9): prompt "a picture of ", nucleus sampling
top_p 0.9, length 10–75, repetition penalty 1.1, the prompt stripped from the answer. The captioner is
a transformers folder (e.g. `blip-image-captioning-base`, as `save_pretrained` writes it). Anime runs the
WD14 ONNX tagger (`wd-v1-4-moat-tagger-v2.onnx` + its `.csv` of tag names) with onnxruntime.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipProcessor

from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.masks import onnx_session, static_side

BLIP_FOLDER = "blip-image-captioning-base"
WD14_FILES = ("wd-v1-4-moat-tagger-v2.onnx", "wd-v1-4-moat-tagger-v2.csv")
CAPTION_PROMPT = "a picture of "
# Fooocus's WD14 thresholds (fooocus-engine.md §9); rating tags (category 9) are never returned.
GENERAL_CATEGORY, CHARACTER_CATEGORY = 0, 4
GENERAL_THRESHOLD, CHARACTER_THRESHOLD = 0.35, 0.85
TAGGER_SIDE = 448
# Tags like `^_^`, `o_o`, `(o)_(o)`: no underscore-separated part holds a word, so `_` is part of the face.
_WORD = re.compile(r"[A-Za-z]{2,}")


class DescribeUnavailableError(RuntimeError):
    """The describe model is there but this worker cannot run it."""


class Describer:
    """Loads the captioner on first use and keeps it until `release`."""

    def __init__(self, folders: ModelFolders, device: str | torch.device = "cpu") -> None:
        self.folders = folders
        self.device = torch.device(device)
        self._blip: tuple[BlipProcessor, BlipForConditionalGeneration] | None = None
        self._tag_names: tuple[Path, list[tuple[str, int]]] | None = None
        self._lock = threading.Lock()

    def describe(self, image: Image.Image, image_type: str) -> str:
        if image_type == "Anime":
            return self._tags(image)
        return self._caption(image)

    def release(self) -> None:
        with self._lock:
            self._blip = None
            self._tag_names = None

    def blip_folder(self) -> Path:
        """`captioners/blip-image-captioning-base`, else the first BLIP folder there."""
        captioners = self.folders.folder("captioners")
        preferred = captioners / BLIP_FOLDER
        if (preferred / "config.json").is_file():
            return preferred
        for name in self.folders.names("captioners"):
            config = captioners / name / "config.json"
            if config.is_file() and json.loads(config.read_text()).get("model_type") == "blip":
                return captioners / name
        raise MissingModelError("describing a photo (BLIP captioner)", preferred)

    def _load_blip(self) -> tuple[BlipProcessor, BlipForConditionalGeneration]:
        with self._lock:
            if self._blip is None:
                folder = self.blip_folder()
                processor = BlipProcessor.from_pretrained(folder, local_files_only=True)
                model = BlipForConditionalGeneration.from_pretrained(folder, local_files_only=True)
                self._blip = (processor, model.to(self.device).eval())
            return self._blip

    @torch.no_grad()
    def _caption(self, image: Image.Image) -> str:
        processor, model = self._load_blip()
        inputs = processor(images=image.convert("RGB"), text=CAPTION_PROMPT.strip(), return_tensors="pt")
        output = model.generate(
            **inputs.to(self.device),
            do_sample=True,
            top_p=0.9,
            max_length=75,
            min_length=10,
            repetition_penalty=1.1,
        )
        text = processor.decode(output[0], skip_special_tokens=True).strip()
        prefix = CAPTION_PROMPT.strip()
        return text[len(prefix) :].strip() if text.startswith(prefix) else text

    def _tags(self, image: Image.Image) -> str:
        captioners = self.folders.folder("captioners")
        model_path, csv_path = (captioners / name for name in WD14_FILES)
        self.folders.require("describing anime art (WD14 tagger)", model_path, csv_path)
        session = onnx_session(model_path, "the WD14 tagger", DescribeUnavailableError)
        names = self._load_tag_names(csv_path)
        model_input = session.get_inputs()[0]
        shape = list(model_input.shape)  # N×H×W×C
        side = static_side(shape[1] if len(shape) == 4 else None, TAGGER_SIDE)
        batch = tagger_input(image, side)
        try:
            probabilities = np.asarray(session.run(None, {model_input.name: batch})[0], dtype=np.float32)[0]
        except Exception as failure:
            raise DescribeUnavailableError(f"the WD14 tagger failed to run: {failure}") from None
        if len(probabilities) != len(names):
            raise DescribeUnavailableError(
                f"the WD14 tagger gives {len(probabilities)} scores but `{csv_path.name}` names "
                f"{len(names)} tags"
            )
        return select_tags(names, probabilities.tolist())

    def _load_tag_names(self, path: Path) -> list[tuple[str, int]]:
        with self._lock:
            if self._tag_names is None or self._tag_names[0] != path:
                self._tag_names = (path, read_tag_names(path))
            return self._tag_names[1]


def read_tag_names(path: Path) -> list[tuple[str, int]]:
    """(name, category) per row of the tagger's CSV (`tag_id,name,category,count`), in output order."""
    with path.open(newline="", encoding="utf-8") as file:
        try:
            return [(row["name"], int(row["category"])) for row in csv.DictReader(file)]
        except (KeyError, TypeError, ValueError) as error:
            raise DescribeUnavailableError(
                f"`{path.name}` is not a WD14 tag list (tag_id,name,category,count): {error}"
            ) from None


def tagger_input(image: Image.Image, side: int) -> np.ndarray:
    """1×side×side×3 float32 BGR 0..255: the image on a white square (centred), LANCZOS-resized."""
    rgba = image.convert("RGBA")
    square = Image.new("RGB", (max(rgba.size),) * 2, (255, 255, 255))
    offset = ((square.width - rgba.width) // 2, (square.height - rgba.height) // 2)
    square.paste(rgba, offset, rgba)  # transparent pixels become white too
    resized = square.resize((side, side), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.float32)[:, :, ::-1])[None]


def select_tags(names: list[tuple[str, int]], probabilities: list[float]) -> str:
    """Character tags over 0.85 first, then general tags over 0.35, each by falling probability."""
    scored = list(zip(names, probabilities, strict=True))
    ordered: list[str] = []
    groups = ((CHARACTER_CATEGORY, CHARACTER_THRESHOLD), (GENERAL_CATEGORY, GENERAL_THRESHOLD))
    for category, threshold in groups:
        kept = [(p, name) for (name, kind), p in scored if kind == category and p > threshold]
        ordered += [name for _, name in sorted(kept, key=lambda tag: -tag[0])]
    return ", ".join(prompt_tag(name) for name in ordered)


def prompt_tag(name: str) -> str:
    """`long_hair` → `long hair`, parentheses escaped for prompt weighting; kaomoji keep their `_`."""
    kaomoji = not any(_WORD.search(part) for part in name.split("_"))
    spaced = name if kaomoji else name.replace("_", " ")
    return spaced.replace("(", "\\(").replace(")", "\\)")
