"""Every job kind on the tiny model: upscale/vary, inpaint/outpaint, ControlNet image prompts, enhance."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from diffusers import StableDiffusionXLPipeline
from PIL import Image

from contracts import EnhanceTab, GenerationParams, ImageInputs, ImagePrompt, JobType
from tests.worker.engine.support import make_params, pixels
from tests.worker.engine.tiny_ip_adapter import write_tiny_ip_adapter
from tests.worker.tiny_grounded_sam import write_tiny_grounded_sam
from tests.worker.tiny_models import write_tiny_controlnet
from tests.worker.tiny_onnx import write_tiny_mask_model
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.jobs import JobEngine, JobImages, denoise_schedule, upscale_factor
from worker.engine.jobs.enhance import tab_mask_options
from worker.engine.masks import generate_mask
from worker.engine.runs import StepInfo
from worker.engine.sdxl import SDXLEngine

SOURCE = "inputs/job/image.png"
MASK = "inputs/job/mask.png"
HINT = "inputs/job/hint.png"


def source_image(size: int = 64) -> Image.Image:
    rng = np.random.default_rng(3)
    image = np.full((size, size, 3), 40, dtype=np.uint8)
    image[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (220, 180, 60)  # a square with edges
    return Image.fromarray(np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8))


def square_mask(size: int = 64) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (16, 16, 48, 48))
    return mask


@pytest.fixture(scope="session")
def job_models(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: StableDiffusionXLPipeline) -> Path:
    """A models folder with a tiny random PyraCanny ControlNet and ImagePrompt IP-Adapter (nothing else)."""
    root = tmp_path_factory.mktemp("job-models")
    write_tiny_controlnet(root / "controlnet" / "control-lora-canny-rank128.safetensors", tiny_pipeline.unet)
    write_tiny_ip_adapter(root, tiny_pipeline.unet, "ip-adapter-plus_sdxl_vit-h.bin")
    return root


@pytest.fixture(scope="session")
def jobs(engine: SDXLEngine, job_models: Path) -> JobEngine:
    return JobEngine(engine, ModelFolders(job_models))


def run(entry, params, inputs: JobImages, seeds: list[int]) -> tuple[list, list[StepInfo]]:  # type: ignore[no-untyped-def]
    steps: list[StepInfo] = []
    return list(entry(params, inputs, seeds, steps.append)), steps


def test_denoise_follows_fooocus_steps_over_denoise() -> None:
    assert denoise_schedule(30, 0.5) == (60, pytest.approx(30.5 / 60))
    total, strength = denoise_schedule(18, 0.382)  # type: ignore[misc]
    assert total == 47 and int(total * strength) == 18
    assert denoise_schedule(4, 1.0) == (4, 1.0) and denoise_schedule(4, 0) is None
    assert upscale_factor("Upscale (Custom)", 3.0) == 3.0 and upscale_factor("Upscale (Custom)", None) == 2.0
    assert upscale_factor("Upscale (1.5x)", None) == 1.5


def test_vary_makes_one_image_per_seed_from_the_input(jobs: JobEngine) -> None:
    inputs = JobImages(
        ImageInputs(input_image_key=SOURCE, uov_method="Vary (Strong)"), {SOURCE: source_image()}
    )
    images, steps = run(jobs.upscale_or_vary, make_params(steps=2), inputs, [7, 8])
    assert [(g.index, g.seed, g.image.size) for g in images] == [(0, 7, (64, 64)), (1, 8, (64, 64))]
    assert [(s.image_index, s.step) for s in steps] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert np.abs(pixels(images[0].image) - pixels(images[1].image)).max() > 0


def test_vary_resizes_to_the_native_ceil_in_multiples_of_64(jobs: JobEngine) -> None:
    wide = source_image(200).resize((200, 100))
    inputs = JobImages(ImageInputs(input_image_key=SOURCE, uov_method="Vary (Subtle)"), {SOURCE: wide})
    images, _ = run(jobs.upscale_or_vary, make_params(steps=1), inputs, [7])
    # The tiny model's native side is 64 px, so vary's ceil range is [64, 128]: 200×100 → 128×64.
    assert images[0].image.size == (128, 64)


def test_upscale_resizes_then_refines_and_fast_upscale_only_resizes(jobs: JobEngine) -> None:
    spec = ImageInputs(input_image_key=SOURCE, uov_method="Upscale (Custom)", upscale_value=1.5)
    images, steps = run(
        jobs.upscale_or_vary, make_params(steps=2), JobImages(spec, {SOURCE: source_image()}), [1]
    )
    assert images[0].image.size == (96, 96) and len(steps) == 2
    fast = ImageInputs(input_image_key=SOURCE, uov_method="Upscale (Fast 2x)")
    images, steps = run(
        jobs.upscale_or_vary,
        make_params(image_number=3),
        JobImages(fast, {SOURCE: source_image()}),
        [1, 2, 3],
    )
    assert [g.image.size for g in images] == [(128, 128)] and steps == []


def test_inpaint_keeps_every_pixel_outside_the_mask(jobs: JobEngine) -> None:
    original = source_image()
    spec = ImageInputs(input_image_key=SOURCE, input_mask_key=MASK, inpaint_additional_prompt="a dog")
    images, steps = run(
        jobs.inpaint_or_outpaint,
        make_params(steps=2),
        JobImages(spec, {SOURCE: original, MASK: square_mask()}),
        [4],
    )
    out, before = pixels(images[0].image), pixels(original)
    outside = ~(np.asarray(square_mask()) > 127)
    assert (out[outside] == before[outside]).all()
    assert (out[~outside] != before[~outside]).any() and len(steps) == 2


def test_inpaint_diffuses_the_crop_around_the_mask_at_the_native_ceil(
    jobs: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    diffused: list[Image.Image] = []
    diffuse = jobs.diffuse

    def spy(task, run, **call_args):  # type: ignore[no-untyped-def]
        diffused.append(call_args["image"])
        return diffuse(task, run, **call_args)

    monkeypatch.setattr(jobs, "diffuse", spy)
    original = source_image(128).resize((128, 96))
    mask = Image.new("L", (128, 96), 0)
    mask.paste(255, (56, 40, 72, 56))
    spec = ImageInputs(input_image_key=SOURCE, input_mask_key=MASK)
    # Strength below 1: no fill, so the diffused image is the plain crop, resized.
    params = make_params(steps=2)
    advanced = params.advanced_params.model_copy(
        update={"inpaint_respective_field": 0.5, "inpaint_strength": 0.6}
    )
    params = params.model_copy(update={"advanced_params": advanced})
    images, _ = run(jobs.inpaint_or_outpaint, params, JobImages(spec, {SOURCE: original, MASK: mask}), [4])
    # The crop box (`crop_box`): rows 16..79, columns 31..96, 65×63 px; its shape ceil is the tiny
    # model's native 64, so it is only rounded to latent multiples: 64×64.
    expected = original.crop((31, 16, 96, 79)).resize((64, 64), Image.Resampling.LANCZOS)
    assert len(diffused) == 1 and (pixels(diffused[0]) == pixels(expected)).all()
    assert images[0].image.size == (128, 96)
    outside = ~(np.asarray(mask) > 127)
    assert (pixels(images[0].image)[outside] == pixels(original)[outside]).all()


def test_outpaint_pads_the_chosen_sides(jobs: JobEngine) -> None:
    spec = ImageInputs(input_image_key=SOURCE, outpaint_selections=["Left", "Top"], outpaint_distance_left=16)
    images, _ = run(
        jobs.inpaint_or_outpaint, make_params(steps=1), JobImages(spec, {SOURCE: source_image()}), [4]
    )
    # left: the given 16 px; top: automatic 30% of the height (19 px); the original sits bottom-right.
    assert images[0].image.size == (80, 83)
    assert (pixels(images[0].image)[19:, 16:] == pixels(source_image())).all()


def test_no_mask_and_no_outpaint_is_text_to_image(jobs: JobEngine, engine: SDXLEngine) -> None:
    params = make_params(steps=2)
    spec = ImageInputs(input_image_key=SOURCE, input_mask_key=MASK)
    images, _ = run(
        jobs.inpaint_or_outpaint,
        params,
        JobImages(spec, {SOURCE: source_image(), MASK: Image.new("L", (64, 64))}),
        [9],
    )
    plain = next(engine.text_to_image(params, [9], lambda info: None))
    assert (pixels(images[0].image) == pixels(plain.image)).all()


@pytest.mark.parametrize("cn_type", ["PyraCanny", "ImagePrompt"])
def test_an_image_prompt_steers_the_image_by_its_weight(jobs: JobEngine, cn_type: str) -> None:
    def with_weight(weight: float) -> np.ndarray:
        slot = ImagePrompt(image_key=HINT, cn_type=cn_type, cn_stop=1.0, cn_weight=weight)
        spec = ImageInputs(image_prompts=[slot])
        images, steps = run(
            jobs.image_prompt, make_params(steps=2), JobImages(spec, {HINT: source_image()}), [3]
        )
        assert len(steps) == 2
        return pixels(images[0].image)

    assert np.abs(with_weight(0.0) - with_weight(1.5)).max() > 0


def test_the_image_encoder_and_adapter_are_read_from_disk_once(jobs: JobEngine) -> None:
    """Kept like the other models: a second image-prompt job reads no file again, and draws the same."""
    slot = ImagePrompt(image_key=HINT, cn_type="ImagePrompt", cn_stop=1.0, cn_weight=1.0)
    inputs = JobImages(ImageInputs(image_prompts=[slot]), {HINT: source_image()})
    jobs.release()
    before = jobs.ip_weights.reads
    first, _ = run(jobs.image_prompt, make_params(steps=2), inputs, [3])
    second, _ = run(jobs.image_prompt, make_params(steps=2), inputs, [3])
    assert jobs.ip_weights.reads - before == 2  # the encoder and the one adapter, once each
    assert (pixels(first[0].image) == pixels(second[0].image)).all()
    jobs.release()  # clean_vram: the next job reads them again
    run(jobs.image_prompt, make_params(steps=2), inputs, [3])
    assert jobs.ip_weights.reads - before == 4


def test_a_controlnet_that_stops_at_zero_steers_nothing(jobs: JobEngine, engine: SDXLEngine) -> None:
    slot = ImagePrompt(image_key=HINT, cn_type="CPDS", cn_stop=0.0, cn_weight=1.0)  # no CPDS file needed
    inputs = JobImages(ImageInputs(image_prompts=[slot]), {HINT: source_image()})
    images, _ = run(jobs.image_prompt, make_params(steps=2), inputs, [3])
    plain = next(engine.text_to_image(make_params(steps=2), [3], lambda info: None))
    assert (pixels(images[0].image) == pixels(plain.image)).all()


def test_an_ip_adapter_is_removed_from_the_shared_unet_after_the_job(
    jobs: JobEngine, engine: SDXLEngine
) -> None:
    slot = ImagePrompt(image_key=HINT, cn_type="ImagePrompt", cn_stop=0.5, cn_weight=1.0)
    list(
        jobs.image_prompt(
            make_params(steps=2),
            JobImages(ImageInputs(image_prompts=[slot]), {HINT: source_image()}),
            [3],
            print,
        )
    )
    unet = engine.pipeline.unet
    assert unet.encoder_hid_proj is None
    assert not any("IPAdapter" in type(p).__name__ for p in unet.attn_processors.values())


@pytest.mark.parametrize(
    ("cn_type", "files"),
    [
        ("CPDS", ["fooocus_xl_cpds_128.safetensors"]),
        ("FaceSwap", ["ip-adapter-plus-face_sdxl_vit-h.bin"]),
    ],
)
def test_a_missing_image_prompt_model_fails_naming_the_file(
    jobs: JobEngine, cn_type: str, files: list[str]
) -> None:
    slot = ImagePrompt(image_key=HINT, cn_type=cn_type, cn_stop=0.5, cn_weight=1.0)
    with pytest.raises(MissingModelError) as failure:
        jobs.image_prompt(
            make_params(), JobImages(ImageInputs(image_prompts=[slot]), {HINT: source_image()}), [1], print
        )
    for name in files:
        assert f"`{name}`" in str(failure.value)
    assert "controlnet" in str(failure.value)


def test_enhance_runs_upscale_and_fails_a_tab_whose_mask_model_is_missing(jobs: JobEngine) -> None:
    spec = ImageInputs(enhance_input_key=SOURCE, enhance_uov_method="Upscale (Fast 2x)")
    images, _ = run(jobs.enhance, make_params(), JobImages(spec, {SOURCE: source_image()}), [1])
    assert images[0].image.size == (128, 128)
    tab = EnhanceTab(enhance_mask_model="u2net")
    spec = ImageInputs(enhance_input_key=SOURCE, enhance_tabs=[tab])
    with pytest.raises(MissingModelError, match=r"`u2net\.onnx` in .*masks"):
        run(jobs.enhance, make_params(), JobImages(spec, {SOURCE: source_image()}), [1])


def test_an_enhance_tab_repaints_inside_its_u2net_mask_only(engine: SDXLEngine, tmp_path: Path) -> None:
    write_tiny_mask_model(tmp_path / "masks" / "u2net.onnx")
    jobs = JobEngine(engine, ModelFolders(tmp_path))
    tab = EnhanceTab(enhance_mask_model="u2net")
    spec = ImageInputs(enhance_input_key=SOURCE, enhance_uov_method="Disabled", enhance_tabs=[tab])
    source = source_image()
    images, steps = run(jobs.enhance, make_params(steps=2), JobImages(spec, {SOURCE: source}), [1])
    [result] = images
    before, after = pixels(source), pixels(result.image)
    assert result.image.size == (64, 64) and steps
    assert (after[:8, :8] == before[:8, :8]).all() and (after[-8:, -8:] == before[-8:, -8:]).all()
    assert (after[24:40, 24:40] != before[24:40, 24:40]).any()


@pytest.mark.parametrize(("box_threshold", "changed"), [(1.0, False), (0.0, True)])
def test_a_default_sam_enhance_tab_repaints_what_it_detects(
    engine: SDXLEngine, tmp_path: Path, box_threshold: float, changed: bool
) -> None:
    write_tiny_grounded_sam(tmp_path)
    jobs = JobEngine(engine, ModelFolders(tmp_path))
    tab = EnhanceTab(enhance_mask_box_threshold=box_threshold)  # the default `sam` model, `face` prompt
    spec = ImageInputs(enhance_input_key=SOURCE, enhance_tabs=[tab])
    source = source_image()
    [result], steps = run(jobs.enhance, make_params(steps=1), JobImages(spec, {SOURCE: source}), [1])
    if not changed:  # nothing detected: the tab leaves the image as it was, without diffusing
        assert (pixels(result.image) == pixels(source)).all() and steps == []
        return
    mask = np.asarray(generate_mask(ModelFolders(tmp_path), source, tab_mask_options(tab))) > 127
    assert mask.any() and steps
    assert (pixels(result.image)[~mask] == pixels(source)[~mask]).all()
    assert (pixels(result.image)[mask] != pixels(source)[mask]).any()


@pytest.mark.parametrize(
    "spec",
    [
        ImageInputs(input_image_key=SOURCE, uov_method="Upscale (1.5x)"),
        ImageInputs(input_image_key=SOURCE, input_mask_key=MASK),
    ],
    ids=["upscale", "inpaint"],
)
def test_image_prompts_mix_with_upscale_and_inpaint(jobs: JobEngine, spec: ImageInputs) -> None:
    slots = [
        ImagePrompt(image_key=HINT, cn_type="PyraCanny", cn_stop=0.5, cn_weight=1.0),
        ImagePrompt(image_key=HINT, cn_type="ImagePrompt", cn_stop=0.5, cn_weight=0.6),
    ]
    mixed = spec.model_copy(update={"image_prompts": slots})
    given = {SOURCE: source_image(), MASK: square_mask(), HINT: source_image()}
    images, steps = run(jobs.image_prompt, make_params(steps=2), JobImages(mixed, given), [2])
    expected = (96, 96) if spec.uov_method.value != "Disabled" else (64, 64)
    assert images[0].image.size == expected and len(steps) == 2


@pytest.mark.parametrize(
    ("job_type", "with_image", "entry"),
    [
        (JobType.TEXT_TO_IMAGE, False, "text_to_image"),
        (JobType.TEXT_TO_IMAGE, True, "image_prompt"),
        (JobType.UPSCALE_VARY, True, "upscale_or_vary"),
        (JobType.INPAINT_OUTPAINT, True, "inpaint_or_outpaint"),
        (JobType.IMAGE_PROMPT, True, "image_prompt"),
        (JobType.ENHANCE, True, "enhance"),
    ],
)
def test_run_picks_the_entry_of_the_job_kind(job_type: JobType, with_image: bool, entry: str) -> None:
    engine = JobEngine.__new__(JobEngine)  # the entries are replaced: no models needed
    engine.sdxl = SimpleNamespace(last_run=None)  # type: ignore[assignment]
    called: list[str] = []
    for name in ("text_to_image", "upscale_or_vary", "inpaint_or_outpaint", "image_prompt", "enhance"):
        setattr(engine, name, lambda *args, name=name: called.append(name) or iter(()))
    images = {"inputs/j/a.png": Image.new("RGB", (8, 8))} if with_image else {}
    list(engine.run(job_type, GenerationParams(image_seed=1), JobImages(ImageInputs(), images), [1], print))
    assert called == [entry]


def test_image_jobs_report_the_prompts_they_diffused_with(jobs: JobEngine) -> None:
    vary = ImageInputs(input_image_key=SOURCE, uov_method="Vary (Subtle)")
    params = make_params(steps=1, prompt="a red fox")
    (image,) = jobs.run(JobType.UPSCALE_VARY, params, JobImages(vary, {SOURCE: source_image()}), [5], print)
    assert image.prompt_metadata is not None and "a red fox" in str(image.prompt_metadata["full_prompt"])
    assert image.sampler_name == params.advanced_params.sampler_name  # what the diffusion ran with
    fast = ImageInputs(input_image_key=SOURCE, uov_method="Upscale (Fast 2x)")
    (resized,) = jobs.run(JobType.UPSCALE_VARY, params, JobImages(fast, {SOURCE: source_image()}), [5], print)
    assert resized.prompt_metadata is None and resized.sampler_name == ""  # no diffusion: nothing left over
