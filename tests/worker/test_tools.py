"""Tool requests answered by a worker: describe (a tiny BLIP), masks (a tiny ONNX model), bad requests."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image

from contracts import DescribeImage, GenerateMask, ToolResult
from tests.worker.test_runner import MemoryStore
from tests.worker.tiny_blip import write_tiny_blip
from tests.worker.tiny_onnx import write_tiny_mask_model
from worker.engine.describe import BLIP_FOLDER, Describer
from worker.engine.folders import ModelFolders
from worker.tools import ToolRunner

IMAGE = "inputs/tool/image.png"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tool-models")
    write_tiny_blip(root / "captioners" / BLIP_FOLDER)
    write_tiny_mask_model(root / "masks" / "u2net.onnx")
    return root


def answer(models: Path, request: DescribeImage | GenerateMask) -> tuple[ToolResult, MemoryStore]:
    store = MemoryStore()
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(buffer, format="PNG")
    store.objects[IMAGE] = buffer.getvalue()
    folders = ModelFolders(models)
    tools = ToolRunner(store, folders, Describer(folders))  # type: ignore[arg-type]
    return asyncio.run(tools.answer(request.model_dump_json().encode())), store


def test_describe_photo_captions_with_blip(models: Path) -> None:
    result, _ = answer(models, DescribeImage(image_key=IMAGE))
    assert result.error is None and isinstance(result.text, str) and result.text
    assert set(result.text.split()) <= {"a", "picture", "of", "cat", "dog", "on", "the", "grass"}


def test_describe_without_a_captioner_names_the_folder(tmp_path: Path) -> None:
    result, _ = answer(tmp_path, DescribeImage(image_key=IMAGE))
    assert result.text is None and f"`{BLIP_FOLDER}` in `{tmp_path / 'captioners'}`" in (result.error or "")


def test_describe_anime_names_the_tagger_files(models: Path) -> None:
    result, _ = answer(models, DescribeImage(image_key=IMAGE, image_type="Anime"))
    assert "`wd-v1-4-moat-tagger-v2.onnx`" in (result.error or "")


@pytest.mark.parametrize(
    ("model", "parts"),
    [
        ("isnet-general-use", ["`isnet-general-use.onnx` in `{models}/masks`"]),
        (
            "sam",
            [
                "`{models}/grounding-dino/grounding-dino-tiny`",
                "`{models}/sam/vit_b`",
                "groundingdino_swint_ogc.pth",
                "sam_vit_b_01ec64.pth",
            ],
        ),
    ],
)
def test_a_mask_model_that_is_missing_is_named_and_no_mask_is_stored(
    models: Path, model: str, parts: list[str]
) -> None:
    result, store = answer(models, GenerateMask(image_key=IMAGE, mask_key="masks/out.png", mask_model=model))
    assert result.mask_key is None and "masks/out.png" not in store.objects
    for part in parts:
        assert part.format(models=models) in (result.error or "")


def test_a_mask_is_stored_as_a_grey_png_of_the_image_size(models: Path) -> None:
    request = GenerateMask(
        image_key=IMAGE, mask_key="masks/out.png", mask_model="u2net", dino_erode_or_dilate=2
    )
    result, store = answer(models, request)
    assert result.error is None and result.mask_key == "masks/out.png"
    mask = Image.open(io.BytesIO(store.objects["masks/out.png"]))
    assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (40, 30))


def test_a_mask_model_file_that_onnxruntime_cannot_load_says_so(tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "u2netp.onnx").write_bytes(b"onnx")
    result, store = answer(
        tmp_path, GenerateMask(image_key=IMAGE, mask_key="masks/out.png", mask_model="u2netp")
    )
    assert "`u2netp.onnx` cannot be loaded by onnxruntime" in (result.error or "")
    assert "masks/out.png" not in store.objects


def test_a_missing_image_or_a_bad_request_is_answered_with_an_error(models: Path) -> None:
    result, _ = answer(models, DescribeImage(image_key="inputs/none.png"))
    assert "inputs/none.png" in (result.error or "")
    tools = ToolRunner(MemoryStore(), ModelFolders(models), Describer(ModelFolders(models)))  # type: ignore[arg-type]
    assert asyncio.run(tools.answer(b'{"type": "tool.nope"}')).error
