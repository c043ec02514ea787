"""The NSFW censor of `advanced_params.black_out_nsfw`: diffusers' `StableDiffusionSafetyChecker`.

Usage:

    censor = NsfwCensor(folders, device="cuda")
    check = censor.load()  # raises MissingModelError without `models/safety_checker/`
    image = check(image)   # GeneratedImage: unchanged, or black with a note

The checker is `CompVis/stable-diffusion-safety-checker` in Hugging Face format (`save_pretrained`: config,
weights and the CLIP `preprocessor_config.json`) in `models/safety_checker/`. It loads on the first job that
asks for it and stays until `release`; a job without the flag never loads it. As in Fooocus, a flagged image
is replaced by a black image of the same size; its metadata notes that it was censored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from PIL import Image
from transformers import CLIPImageProcessorPil

from worker.engine.folders import ModelFolders
from worker.engine.runs import GeneratedImage

log = logging.getLogger(__name__)

SAFETY_CHECKER_FOLDER = "safety_checker"
CENSORED_NOTE = "NSFW censor: potential NSFW content, the image was blacked out (black_out_nsfw)"
REQUIRED_FILES = ("config.json", "preprocessor_config.json")
WHAT = "the NSFW censor (black_out_nsfw: CompVis/stable-diffusion-safety-checker, Hugging Face format)"

Check = Callable[[GeneratedImage], GeneratedImage]


class NsfwCensor:
    """Loads the safety checker on first use and keeps it until `release`."""

    def __init__(self, folders: ModelFolders, device: str | torch.device = "cpu") -> None:
        self.folders = folders
        self.device = torch.device(device)
        self._model: tuple[CLIPImageProcessorPil, StableDiffusionSafetyChecker] | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def folder(self) -> Path:
        return self.folders.folder(SAFETY_CHECKER_FOLDER)

    def load(self) -> Check:
        """The check for one image; loads the checker first (fails naming the folder when it is absent)."""
        with self._lock:
            if self._model is None:
                folder = self.folder()
                self.folders.require(WHAT, *(folder / name for name in REQUIRED_FILES))
                # CLIP's PIL image processor: the default one needs torchvision, which the worker lacks.
                processor = CLIPImageProcessorPil.from_pretrained(folder, local_files_only=True)
                checker = StableDiffusionSafetyChecker.from_pretrained(folder, local_files_only=True)
                self._model = (processor, checker.to(self.device).eval())
                log.info("loaded the NSFW censor from %s", folder)
            model = self._model
        # Bound to this model: a `release` during the job does not pull it from under the job's images.
        return partial(censored, *model)

    def release(self) -> None:
        with self._lock:
            self._model = None


def flagged(
    processor: CLIPImageProcessorPil, checker: StableDiffusionSafetyChecker, image: Image.Image
) -> bool:
    """Whether the checker finds a concept of its list in `image`."""
    rgb = image.convert("RGB")
    pixels = processor(images=rgb, return_tensors="pt").pixel_values
    pixels = pixels.to(device=checker.device, dtype=checker.dtype)
    # The checker blacks out its `images` argument itself; only its verdict is read here.
    _, verdicts = checker(clip_input=pixels, images=[np.asarray(rgb)])
    return bool(verdicts[0])


def censored(
    processor: CLIPImageProcessorPil, checker: StableDiffusionSafetyChecker, generated: GeneratedImage
) -> GeneratedImage:
    """`generated`, or a black image of its size and mode with a note when it is flagged."""
    if not flagged(processor, checker, generated.image):
        return generated
    log.warning("image %d (seed %d) blacked out by the NSFW censor", generated.index, generated.seed)
    black = Image.new(generated.image.mode, generated.image.size)
    return replace(generated, image=black, notes=(*generated.notes, CENSORED_NOTE))
