"""One image's prompt plan: inline LoRAs, styled workloads, the Fooocus V2 expansion, and what the job's
metadata reports of them; then the pipeline's embedding arguments for that plan."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from worker.engine.prompts.encoder import PromptEncoder
from worker.engine.prompts.expansion import EXPANSION_FOLDER, PromptExpansion, missing_files
from worker.engine.prompts.styles import EXPANSION_STYLE, StyleBook
from worker.engine.prompts.syntax import extract_loras
from worker.engine.prompts.wildcards import Wildcards
from worker.engine.prompts.workloads import build_workloads

log = logging.getLogger(__name__)


@dataclass
class PromptPlan:
    """The texts one image is conditioned on, and what came out of the prompt besides them.

    `loras` are the inline `<lora:name:weight>` tags of the prompt, in order, as `(name, weight)`; the
    name is as written, without extension: resolving it to a file in `loras/` (and the five-slot limit)
    is the LoRA loader's job. The tags are removed from the encoded text.
    """

    positive: list[str]  # every positive workload, the expansion last when there is one
    negative: list[str]
    positive_top_k: int  # how many positive workloads feed the pooled embedding (never the expansion)
    negative_top_k: int
    loras: list[tuple[str, float]] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)  # templates applied, `Random Style` resolved
    expansion: str = ""  # the Fooocus V2 text, "" when not used
    expansion_skipped: str = ""  # why Fooocus V2 was asked for and not run, "" otherwise

    def metadata(self) -> dict[str, object]:
        """The keys Fooocus writes into an image's metadata, plus what this worker adds."""
        meta: dict[str, object] = {
            "full_prompt": self.positive,
            "full_negative_prompt": self.negative,
            "prompt_expansion": self.expansion,
            "styles_applied": self.styles,
        }
        if self.loras:
            meta["inline_loras"] = [[name, weight] for name, weight in self.loras]
        if self.expansion_skipped:
            meta["prompt_expansion_skipped"] = self.expansion_skipped
        return meta


class PromptEngine:
    """Styles, wildcards and the expansion model of one worker's models folder (`None`: built-ins only)."""

    def __init__(self, models_dir: Path | None = None, device: str | torch.device = "cpu") -> None:
        self.models_dir = models_dir
        self.device = torch.device(device)
        self.book = StyleBook(models_dir / "styles" if models_dir is not None else None)
        self.wildcards = Wildcards(models_dir / "wildcards" if models_dir is not None else None)
        self._expansion: PromptExpansion | None = None
        self._encoder: PromptEncoder | None = None
        self._encoder_owner: tuple[object, object, int] | None = None

    def release(self) -> None:
        """Drop the expansion model and cached encodings (Fooocus-API's clean_vram)."""
        self._expansion = None
        self._encoder = self._encoder_owner = None

    def _expander(self) -> tuple[PromptExpansion | None, str]:
        """The expansion model (loaded once), or `None` and why; the folder is rechecked on every miss."""
        if self._expansion is not None:
            return self._expansion, ""
        folder = self.models_dir / EXPANSION_FOLDER if self.models_dir is not None else EXPANSION_FOLDER
        missing = missing_files(folder) if self.models_dir is not None else ["the models folder"]
        if missing:
            return None, f"{folder} lacks {', '.join(missing)}"
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self._expansion = PromptExpansion(folder, self.device, dtype)
        return self._expansion, ""

    def plan(
        self,
        prompt: str,
        negative_prompt: str,
        style_names: list[str],
        *,
        seed: int,
        index: int = 0,
        in_order: bool = False,
    ) -> PromptPlan:
        """The plan of image `index` (seed `seed`): workloads as fooocus-engine.md §4.1 and §8 build them."""
        prompt, loras = extract_loras(prompt)
        work = build_workloads(
            prompt,
            negative_prompt,
            style_names,
            seed=seed,
            index=index,
            book=self.book,
            wildcards=self.wildcards,
            in_order=in_order,
        )
        plan = PromptPlan(
            positive=work.positive,
            negative=work.negative,
            positive_top_k=work.positive_top_k,
            negative_top_k=work.negative_top_k,
            loras=loras,
            styles=work.styles,
        )
        if EXPANSION_STYLE in style_names and work.main_prompt:
            expander, why = self._expander()
            if expander is None:
                log.warning("Fooocus V2 expansion skipped: %s", why)
                plan.expansion_skipped = why
            else:
                plan.expansion = expander(work.main_prompt, seed)
                plan.positive = [*plan.positive, plan.expansion]
        return plan

    def embeddings(
        self, pipeline: Any, plan: PromptPlan, *, clip_skip: int, guidance_scale: float, job: object
    ) -> dict[str, torch.Tensor]:
        """`prompt_embeds`, `pooled_prompt_embeds` and the negatives for `plan` on `pipeline`.

        Encodings are reused while `job` (any object standing for the job, e.g. its params) and the
        pipeline's text encoders stay the same, so each distinct workload is encoded once per job; a new
        job encodes afresh, as its LoRAs may have changed the text encoders.
        """
        owner = (job, pipeline.text_encoder_2, clip_skip)  # held, so neither id can be reused meanwhile
        if self._encoder is None or not _same(self._encoder_owner, owner):
            self._encoder, self._encoder_owner = PromptEncoder(pipeline, clip_skip, self.device), owner
        return self._encoder.embeddings(
            plan.positive,
            plan.negative,
            positive_top_k=plan.positive_top_k,
            negative_top_k=plan.negative_top_k,
            guidance_scale=guidance_scale,
        )


def _same(a: tuple[object, ...] | None, b: tuple[object, ...]) -> bool:
    return a is not None and all(x is y or x == y for x, y in zip(a, b, strict=True))
