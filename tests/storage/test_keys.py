"""The key scheme, and the validation that keeps ``/files/{date}/{name}`` inside ``outputs/``."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import pytest

from storage.keys import content_type_for, file_key, input_key, manifest_key, output_key, read_model_key

JOB = "0f8c3c1e-8a54-4b4e-9d43-1d1f2d3e4f50"


def test_input_key() -> None:
    assert input_key(JOB, "image-0.png") == f"inputs/{JOB}/image-0.png"
    assert input_key(UUID(JOB), "mask") == f"inputs/{JOB}/mask"


def test_output_key_uses_the_day_only() -> None:
    assert output_key(date(2024, 5, 1), f"{JOB}-0.png") == f"outputs/2024-05-01/{JOB}-0.png"
    assert output_key(datetime(2024, 5, 1, 23, 59), "a.webp") == "outputs/2024-05-01/a.webp"


def test_manifest_key() -> None:
    assert manifest_key(JOB) == f"manifests/{JOB}.json"
    assert manifest_key(UUID(JOB)) == f"manifests/{JOB}.json"


def test_read_model_key_names_the_log_and_refuses_a_path() -> None:
    assert read_model_key("fleet.log") == "read-models/fleet.log.sqlite"
    with pytest.raises(ValueError, match="log"):
        read_model_key("../outputs")


@pytest.mark.parametrize(
    "name", ["a.png", "a.jpg", "a.jpeg", "a.webp", f"{JOB}-3.png", "A_b-c.1.png", "a..png"]
)
def test_file_key_accepts_output_names(name: str) -> None:
    assert file_key("2024-05-01", name) == f"outputs/2024-05-01/{name}"


def test_file_key_names_what_output_key_wrote() -> None:
    day = date(2025, 12, 31)
    assert file_key("2025-12-31", "x-1.jpeg") == output_key(day, "x-1.jpeg")


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "",
        "../x.png",
        "..%2fx.png",
        "%2e%2e%2f",
        "%2e%2e%2fsecret.png",
        "a/b",
        "a/b.png",
        "a\\b",
        "a\\b.png",
        ".hidden.png",
        ".png",
        "x.exe",
        "x.png.exe",
        "x",
        "x.PNG",
        "x.png\x00",
        "x\x00.png",
        "x.png\n",
        "x .png",
        "é.png",
        "x.png/",
        "a" * 252 + ".png",
    ],
)
def test_file_key_rejects_unsafe_names(name: str) -> None:
    with pytest.raises(ValueError):
        file_key("2024-05-01", name)


@pytest.mark.parametrize(
    "day",
    [
        "2024-13-01",
        "2024-02-30",
        "2024-00-10",
        "20240501",
        "2024-5-1",
        "2024-05-01T00:00",
        "2024-05-01\n",
        " 2024-05-01",
        "../2024-05-01",
        "2024-05-01/..",
        "２０２４-05-01",
        "..",
        "",
        "2024-05-01\x00",
    ],
)
def test_file_key_rejects_bad_dates(day: str) -> None:
    with pytest.raises(ValueError, match="date"):
        file_key(day, "a.png")


@pytest.mark.parametrize("name", ["a/b", "..", ".x", "a\\b", "x\x00"])
def test_input_and_manifest_keys_reject_unsafe_segments(name: str) -> None:
    with pytest.raises(ValueError):
        input_key(JOB, name)
    with pytest.raises(ValueError):
        input_key(name, "a.png")
    with pytest.raises(ValueError):
        manifest_key(name)


def test_output_key_rejects_names_file_key_would_refuse() -> None:
    with pytest.raises(ValueError):
        output_key(date(2024, 5, 1), "x.exe")


def test_content_type_for() -> None:
    assert content_type_for("a.png") == "image/png"
    assert content_type_for("a.jpg") == content_type_for("a.jpeg") == "image/jpeg"
    assert content_type_for("a.webp") == "image/webp"
    assert content_type_for("a.json") == "application/octet-stream"
    assert content_type_for("png") == "application/octet-stream"
