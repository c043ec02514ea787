"""What the images and compose file promise: a slim edge (no torch, nothing of the worker's extra), a
worker image for GPUs, both running as a non-root user with a default command, a small build context,
and pinned service images."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "torch",
    "diffusers",
    "transformers",
    "accelerate",
    "peft",
    "onnxruntime",
    "open_clip",
    "safetensors",
)

BLOCKER = f"""
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ImportError("the edge imported " + name)
sys.meta_path.insert(0, Blocker())
import edge.app, edge.cli, fleet_cli, contracts, storage, messaging
"""


def test_the_edge_imports_nothing_of_the_worker_extra() -> None:
    run = subprocess.run(
        [sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_base_install_is_the_edge_and_the_models_are_the_worker_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split("[")[0].split("=")[0] for dep in project["dependencies"]}
    worker = {dep.split("[")[0].split("=")[0] for dep in project["optional-dependencies"]["worker"]}
    assert not names & {"torch", "diffusers", "transformers", "onnxruntime"}
    assert {"torch", "diffusers", "transformers", "onnxruntime"} <= worker


def test_each_image_runs_as_a_user_with_a_default_command() -> None:
    stages = (ROOT / "Dockerfile").read_text().split("\nFROM ")
    targets = {stage.split()[2]: stage for stage in stages[1:]}
    assert set(targets) == {"base", "edge", "worker"}
    del targets["base"]
    for name, stage in targets.items():
        assert "\nUSER fleet" in stage and "\nCMD [" in stage, name
    assert "torch" not in targets["edge"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)


def test_compose_pins_its_images_and_gives_the_worker_a_gpu() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for name, service in services.items():
        if "image" in service:
            tag = service["image"].rsplit(":", 1)[1]
            assert tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {service['image']}"
    assert services["edge"]["build"]["target"] == "edge" and services["worker"]["build"]["target"] == "worker"
    [gpu] = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["capabilities"] == ["gpu"]
