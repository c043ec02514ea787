"""Describe an image: a BLIP caption (Photo) or WD14 tags (Anime), from `models/captioners/`.

Photo follows Fooocus's BLIP call (fooocus-engine.md §9): prompt "a picture of ", nucleus sampling
top_p 0.9, length 10–75, repetition penalty 1.1, the prompt stripped from the answer. The captioner is
a transformers folder (e.g. `blip-image-captioning-base`, as `save_pretrained` writes it). Anime needs
the WD14 ONNX tagger, which this worker cannot run without onnxruntime: it fails, naming both.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipProcessor

from worker.engine.folders import MissingModelError, ModelFolders

BLIP_FOLDER = "blip-image-captioning-base"
WD14_FILES = ("wd-v1-4-moat-tagger-v2.onnx", "wd-v1-4-moat-tagger-v2.csv")
CAPTION_PROMPT = "a picture of "


class DescribeUnavailableError(RuntimeError):
    """The describe model is there but this worker cannot run it."""


class Describer:
    """Loads the captioner on first use and keeps it until `release`."""

    def __init__(self, folders: ModelFolders, device: str | torch.device = "cpu") -> None:
        self.folders = folders
        self.device = torch.device(device)
        self._blip: tuple[BlipProcessor, BlipForConditionalGeneration] | None = None
        self._lock = threading.Lock()

    def describe(self, image: Image.Image, image_type: str) -> str:
        if image_type == "Anime":
            return self._tags(image)
        return self._caption(image)

    def release(self) -> None:
        with self._lock:
            self._blip = None

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
        self.folders.require(
            "describing anime art (WD14 tagger)", *(captioners / name for name in WD14_FILES)
        )
        if importlib.util.find_spec("onnxruntime") is None:
            raise DescribeUnavailableError(
                f"the WD14 tagger `{WD14_FILES[0]}` is an ONNX model and this worker has no onnxruntime"
            )
        raise DescribeUnavailableError("running the WD14 ONNX tagger is not implemented yet")
