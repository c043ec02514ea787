"""`fooocus-fleet models init-tiny` writes the tiny model where the worker looks for it."""

from __future__ import annotations

from pathlib import Path

from fleet_cli import main
from worker.engine.loader import ModelLibrary


def test_init_tiny_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert main(["models", "init-tiny", "--models-dir", str(models)]) == 0
    library = ModelLibrary(models, tmp_path / "cache")
    assert library.checkpoints() == ["fleet-tiny-sdxl.safetensors"]


def test_unknown_command_prints_usage(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["nonsense"]) == 2
    assert "usage: fooocus-fleet" in capsys.readouterr().out
