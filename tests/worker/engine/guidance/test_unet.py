"""The UNet wrapper on the tiny model's UNet, checked against the formulas computed by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

from worker.engine.guidance import AdmScalers, GuidanceSettings, RefinerRoute, guided_unet
from worker.engine.guidance.cfg import CfgSettings, fooocus_cfg


def _inputs(pipeline: StableDiffusionXLPipeline) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(1)
    config = pipeline.unet.config
    return {
        "sample": torch.randn((2, 4, 8, 8), generator=generator),
        "encoder_hidden_states": torch.randn((2, 77, config.cross_attention_dim), generator=generator),
        "added_cond_kwargs": {
            "text_embeds": torch.randn((2, 32), generator=generator),
            "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2),  # what the pipeline would pass
        },
    }


def _raw(unet: Any, inputs: dict[str, Any], timestep: float, time_ids: list[list[float]]) -> torch.Tensor:
    added = {**inputs["added_cond_kwargs"], "time_ids": torch.tensor(time_ids)}
    arguments = {**inputs, "added_cond_kwargs": added}
    return unet(arguments.pop("sample"), timestep, **arguments, return_dict=False)[0]


def _fake_pipeline(pipeline: StableDiffusionXLPipeline, cfg: bool) -> SimpleNamespace:
    return SimpleNamespace(
        unet=pipeline.unet, scheduler=pipeline.scheduler, vae_scale_factor=8, do_classifier_free_guidance=cfg
    )


@pytest.mark.parametrize("sharpness", [0.0, 30.0])
def test_pipeline_cfg_on_the_wrapper_output_gives_fooocus_final(
    tiny_pipeline: StableDiffusionXLPipeline, sharpness: float
) -> None:
    unet, timestep, gs = tiny_pipeline.unet, 800, 9.0
    inputs = _inputs(tiny_pipeline)
    cfg = CfgSettings(gs, sharpness, 7.0)
    settings = GuidanceSettings(cfg, AdmScalers(1.5, 0.8, 0.3))
    with torch.no_grad():
        # t=800 > 699.3: emphasized ADM, 64*0.8=51.2 → 51 for the negative, 96 for the positive.
        raw = _raw(unet, inputs, timestep, [[51, 51, 0, 0, 64, 64], [96, 96, 0, 0, 64, 64]])
        with guided_unet(_fake_pipeline(tiny_pipeline, cfg=True), settings) as calls:
            wrapped = unet(inputs["sample"], timestep, **{k: v for k, v in inputs.items() if k != "sample"})
            wrapped = wrapped.sample
    uncond, cond = raw.chunk(2)
    x = inputs["sample"].chunk(2)[1]
    noise = math.sqrt(1 - float(tiny_pipeline.scheduler.alphas_cumprod[800]))
    final = fooocus_cfg(uncond, cond, x - noise * cond, cfg, progress=1 - 800 / 999)

    w_uncond, w_cond = wrapped.chunk(2)
    guided = w_uncond + gs * (w_cond - w_uncond)  # the pipeline's own CFG step
    assert torch.equal(guided, final)
    assert calls.models == ["base"]
    assert "forward" not in vars(unet)  # the wrapper is gone after the block


def test_consistent_ids_after_the_end_and_positive_rows_without_cfg(
    tiny_pipeline: StableDiffusionXLPipeline,
) -> None:
    unet, timestep = tiny_pipeline.unet, 500
    inputs = _inputs(tiny_pipeline)
    single = {
        "sample": inputs["sample"][1:],
        "encoder_hidden_states": inputs["encoder_hidden_states"][1:],
        "added_cond_kwargs": {k: v[1:] for k, v in inputs["added_cond_kwargs"].items()},
    }
    settings = GuidanceSettings(CfgSettings(1.0, 2.0, 7.0), AdmScalers(1.5, 0.8, 0.6))
    with torch.no_grad():
        early = _raw(unet, single, timestep, [[96, 96, 0, 0, 64, 64]])  # 500 > 999*0.4: emphasized
        with guided_unet(_fake_pipeline(tiny_pipeline, cfg=False), settings):
            out = unet(single["sample"], timestep, **{k: v for k, v in single.items() if k != "sample"})
        late = _raw(unet, single, 300, [[64, 64, 0, 0, 64, 64]])
        with guided_unet(_fake_pipeline(tiny_pipeline, cfg=False), settings):
            out_late = unet(single["sample"], 300, **{k: v for k, v in single.items() if k != "sample"})

    assert torch.equal(out.sample, early)  # CFG 1: the positive prediction, unchanged
    assert torch.equal(out_late.sample, late)


def test_refiner_route_takes_over_from_its_first_call(tiny_pipeline: StableDiffusionXLPipeline) -> None:
    unet = tiny_pipeline.unet
    inputs = _inputs(tiny_pipeline)
    seen: list[int] = []

    def refiner_forward(sample: torch.Tensor, timestep: Any, **kwargs: Any) -> tuple[torch.Tensor]:
        seen.append(int(timestep))
        assert kwargs["added_cond_kwargs"]["time_ids"].shape == (2, 6)
        return (torch.zeros_like(sample),)

    route = RefinerRoute(_Callable(refiner_forward, unet.config), first_call=2)
    pipeline = _fake_pipeline(tiny_pipeline, cfg=True)
    with torch.no_grad(), guided_unet(pipeline, GuidanceSettings(), route) as calls:
        for timestep in (900, 600, 300, 100):
            unet(inputs["sample"], timestep, **{k: v for k, v in inputs.items() if k != "sample"})

    assert calls.models == ["base", "base", "refiner", "refiner"]
    assert seen == [300, 100]


class _Callable:
    """A stand-in refiner UNet: a function with a config."""

    def __init__(self, function: Any, config: Any) -> None:
        self.function = function
        self.config = config

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def test_an_sdxl_refiner_gets_clip_g_and_aesthetic_scores(tiny_pipeline: StableDiffusionXLPipeline) -> None:
    torch.manual_seed(5)
    # The SDXL-refiner layout at tiny size: CLIP-G width (64) cross-attention, five size numbers.
    refiner = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=5 * 8 + 32,
        cross_attention_dim=64,
    ).eval()
    inputs = _inputs(tiny_pipeline)
    settings = GuidanceSettings(CfgSettings(4.0, 0.0, 7.0), AdmScalers(1.5, 0.8, 0.3))
    with torch.no_grad():
        direct = refiner(
            inputs["sample"],
            400,
            encoder_hidden_states=inputs["encoder_hidden_states"][..., -64:],
            added_cond_kwargs={
                "text_embeds": inputs["added_cond_kwargs"]["text_embeds"],
                "time_ids": torch.tensor([[64.0, 64, 0, 0, 2.5], [64.0, 64, 0, 0, 6.0]]),
            },
        ).sample
        route = RefinerRoute(refiner, first_call=0)
        with guided_unet(_fake_pipeline(tiny_pipeline, cfg=True), settings, route) as calls:
            wrapped = tiny_pipeline.unet(
                inputs["sample"], 400, **{k: v for k, v in inputs.items() if k != "sample"}
            ).sample

    uncond, cond = direct.chunk(2)
    torch.testing.assert_close(wrapped.chunk(2)[1], uncond + 4.0 * (cond - uncond))
    assert calls.models == ["refiner"]
