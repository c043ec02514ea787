"""The prompt side inside `SDXLEngine.run_pipeline`, end to end on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from diffusers import StableDiffusionXLPipeline
from PIL import Image

from contracts import ImageInputs
from tests.worker.engine.support import make_params, pixels
from worker.engine.folders import ModelFolders
from worker.engine.jobs import JobEngine, JobImages
from worker.engine.metadata import RunRecord, fooocus_metadata
from worker.engine.prompts import PromptEngine
from worker.engine.runs import GeneratedImage
from worker.engine.sdxl import SDXLEngine


def _images(engine: SDXLEngine, seeds: list[int], steps: int = 1, **fields: object) -> list[GeneratedImage]:
    params = make_params(steps=steps, sampler_name="euler", scheduler_name="normal", **fields)
    return list(engine.text_to_image(params, seeds, lambda _: None))


def test_a_style_changes_the_image_and_runs_are_deterministic(engine: SDXLEngine) -> None:
    plain = _images(engine, [3], style_selections=[])[0]
    styled = _images(engine, [3], style_selections=["SAI Anime"])[0]
    again = _images(engine, [3], style_selections=["SAI Anime"])[0]

    assert (pixels(styled.image) == pixels(again.image)).all()
    assert (pixels(styled.image) != pixels(plain.image)).any()
    assert plain.prompt_metadata is not None and plain.prompt_metadata["full_prompt"] == ["a photo of a cat"]
    assert styled.prompt_metadata is not None
    assert styled.prompt_metadata["full_prompt"] == [
        engine.prompts.book.styles["SAI Anime"].prompt.replace("{prompt}", "a photo of a cat")
    ]
    assert styled.prompt_metadata["full_negative_prompt"] == [
        engine.prompts.book.styles["SAI Anime"].negative
    ]


def test_clip_skip_changes_the_image(engine: SDXLEngine) -> None:
    default = _images(engine, [4], style_selections=[])[0]
    skipped = _images(engine, [4], style_selections=[], clip_skip=3)[0]
    assert (pixels(default.image) != pixels(skipped.image)).any()


def test_arrays_and_random_style_follow_each_image(engine: SDXLEngine) -> None:
    images = _images(engine, [10, 11], prompt="a [[red,blue]] cat", style_selections=[], image_number=2)
    assert [image.prompt_metadata["full_prompt"] for image in images] == [  # type: ignore[index]
        ["a red cat"],
        ["a blue cat"],
    ]
    params = make_params(style_selections=["Random Style"])
    drawn = set()
    for index, seed in enumerate(range(20, 26)):
        engine.prompt_embeddings(engine.pipeline, params, seed, index)
        plan = engine.last_prompt_plan
        assert plan is not None and len(plan.styles) == 1
        drawn.add(plan.styles[0])
    assert len(drawn) > 1


def test_default_styles_without_the_expansion_model_still_run(engine: SDXLEngine) -> None:
    image = _images(engine, [5])[0]  # Fooocus V2, Enhance, Sharp
    meta = image.prompt_metadata
    assert meta is not None and meta["prompt_expansion"] == ""
    assert "prompt_expansion_skipped" in meta
    assert meta["styles_applied"] == ["Fooocus Enhance", "Fooocus Sharp"]
    assert len(meta["full_negative_prompt"]) == 2  # type: ignore[arg-type]


def test_user_styles_and_wildcards_come_from_the_models_folder(
    tmp_path: Path, tiny_pipeline: StableDiffusionXLPipeline
) -> None:
    (tmp_path / "styles").mkdir()
    (tmp_path / "styles" / "mine.json").write_text(
        json.dumps([{"name": "SAI Anime", "prompt": "my own take on {prompt}", "negative_prompt": "dull"}])
    )
    (tmp_path / "wildcards").mkdir()
    (tmp_path / "wildcards" / "pet.txt").write_text("hamster\nferret\n")
    engine = SDXLEngine(tiny_pipeline, prompts=PromptEngine(tmp_path))

    images = _images(
        engine,
        [1, 2],
        steps=1,
        prompt="a __pet__",
        style_selections=["SAI Anime"],
        image_number=2,
        read_wildcards_in_order=True,
    )
    assert [image.prompt_metadata["full_prompt"] for image in images] == [  # type: ignore[index]
        ["my own take on a hamster"],
        ["my own take on a ferret"],
    ]
    assert images[0].prompt_metadata["full_negative_prompt"] == ["dull"]  # type: ignore[index]


def test_inpaint_additional_prompt_is_line_zero(tmp_path: Path, engine: SDXLEngine) -> None:
    canvas = Image.fromarray(np.full((64, 64, 3), 90, dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    spec = ImageInputs(input_image_key="image", input_mask_key="mask", inpaint_additional_prompt="a dog")
    params = make_params(steps=1, prompt="in a garden", style_selections=["Fooocus Sharp"])
    jobs = JobEngine(engine, ModelFolders(tmp_path))

    list(
        jobs.inpaint_or_outpaint(
            params, JobImages(spec, {"image": canvas, "mask": mask}), [6], lambda _: None
        )
    )

    plan = engine.last_prompt_plan
    assert plan is not None
    sharp = engine.prompts.book.styles["Fooocus Sharp"].prompt
    # The style wraps line 0 (the additional prompt); the user's prompt is an extra workload.
    assert plan.positive == [sharp.replace("{prompt}", "a dog"), "in a garden"]


def test_image_metadata_carries_the_full_prompts(engine: SDXLEngine) -> None:
    image = _images(engine, [7], style_selections=["Fooocus Pony"], negative_prompt="blurry")[0]
    record = RunRecord(make_params(style_selections=["Fooocus Pony"])).with_prompts(image.prompt_metadata)
    metadata = fooocus_metadata(record, image.seed, "euler", "normal")
    assert metadata["full_prompt"] == ["score_9, score_8_up, score_7_up, a photo of a cat"]
    assert metadata["full_negative_prompt"] == ["score_6, score_5, score_4", "blurry"]
    assert metadata["seed"] == "7" and metadata["prompt_expansion"] == ""
