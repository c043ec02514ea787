"""Where each kind of model file lives under the worker's models folder (Fooocus's layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Folder → what it holds; Fooocus's names (fooocus-engine.md §11), plus the Hugging Face-format folders of
# GroundingDINO and SAM (`worker.engine.grounded_sam`) and the NSFW censor (`worker.engine.censor`).
FOLDERS = (
    "checkpoints",
    "loras",
    "vae",
    "embeddings",
    "controlnet",
    "clip_vision",
    "captioners",
    "upscale_models",
    "masks",
    "sam",
    "grounding-dino",
    "safety_checker",
)
MODEL_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".onnx")


class MissingModelError(FileNotFoundError):
    """A job or tool needs a model file the worker does not have; the message says where to put it."""

    def __init__(self, what: str, *paths: Path) -> None:
        listed = ", ".join(f"`{p.name}` in `{p.parent}`" for p in paths)
        super().__init__(f"{what} needs the model file(s) {listed}; put them there and retry")
        self.paths = paths


@dataclass(frozen=True)
class ModelFolders:
    """The models folder of one worker."""

    root: Path

    def folder(self, name: str) -> Path:
        return self.root / name

    def require(self, what: str, *paths: Path) -> None:
        missing = [path for path in paths if not path.exists()]
        if missing:
            raise MissingModelError(what, *missing)

    def find(self, folder: str, name: str, suffix: str, what: str, *, folders_too: bool = False) -> Path:
        """The model `name` in `folder` (`name` or `name` + `suffix`, subfolders allowed); a name never
        leads out of the folder. A missing one raises `MissingModelError` naming the folder."""
        base = self.folder(folder).resolve()
        for candidate in (name, f"{name}{suffix}"):
            path = (base / candidate).resolve()
            if path.is_relative_to(base) and (path.exists() if folders_too else path.is_file()):
                return path
        raise MissingModelError(what, self.folder(folder) / name)

    def names(self, folder: str) -> list[str]:
        """Sorted model names in `folder`: model files and subfolders (diffusers/transformers layout)."""
        path = self.folder(folder)
        if not path.is_dir():
            return []
        return sorted(
            entry.name
            for entry in path.iterdir()
            if not entry.name.startswith(".")
            and not entry.name.endswith(".config")  # sidecar config folders are not models
            and (entry.is_dir() or entry.suffix in MODEL_SUFFIXES)
        )

    def scan(self) -> dict[str, list[str]]:
        """Every folder's names, for `RefreshModels`."""
        return {name: self.names(name) for name in FOLDERS}
