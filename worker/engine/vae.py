"""A custom VAE (`advanced_params.vae_name`, a preset's VAE such as Pony's) in place of the checkpoint's.

Usage:

    vaes = VaeSwitch(folders, cache_dir)
    used = vaes.apply(engine.pipeline, params.advanced_params.vae_name, engine)  # before the job runs

`Default (model)` keeps (or puts back) the checkpoint's own VAE. Any other name is a file in `models/vae`
(a single-file VAE in the original layout, read with the checkpoint's VAE config) or a diffusers folder.
The swap is on the shared pipeline, so its from_pipe siblings and the engine's decode use it too. The
last custom VAE stays loaded; a missing file fails the job naming the file and the `vae` folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusers import AutoencoderKL

from worker.engine.folders import ModelFolders

if TYPE_CHECKING:
    from worker.engine.sdxl import SDXLEngine

log = logging.getLogger(__name__)

VAE_FOLDER = "vae"
DEFAULT_VAE = "Default (model)"
_DEFAULTS = frozenset({"", "None", DEFAULT_VAE})


def vae_path(folders: ModelFolders, name: str) -> Path:
    """The file or folder of VAE `name` (the stem is accepted); `MissingModelError` names the folder."""
    return folders.find(VAE_FOLDER, name, ".safetensors", f"the VAE `{name}`", folders_too=True)


class VaeSwitch:
    """Puts the job's VAE on a pipeline, remembering each checkpoint's own VAE to put it back."""

    def __init__(self, folders: ModelFolders, cache_dir: Path) -> None:
        self.folders = folders
        self.cache_dir = cache_dir
        self._own: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()  # unet → its VAE
        self._loaded: tuple[tuple[str, int, int], AutoencoderKL] | None = None
        self.loads = 0

    def apply(self, pipeline: Any, name: str, engine: SDXLEngine) -> str:
        """Make `name` the pipeline's VAE; returns the name used (`Default (model)` for its own)."""
        own = self._own.setdefault(pipeline.unet, pipeline.vae)
        wanted = own if name in _DEFAULTS else self._load(vae_path(self.folders, name), own)
        if pipeline.vae is not wanted:
            wanted.to(device=engine.device, dtype=engine.dtype)
            pipeline.register_modules(vae=wanted)
            engine.restore_vae_dtype(pipeline)
        return DEFAULT_VAE if wanted is own else name

    def release(self) -> None:
        self._loaded = None

    def _load(self, path: Path, own: Any) -> AutoencoderKL:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if self._loaded is not None and self._loaded[0] == key:
            return self._loaded[1]
        self._loaded = None  # one custom VAE at a time
        log.info("loading the VAE %s", path.name)
        if path.is_dir():
            vae = AutoencoderKL.from_pretrained(path, local_files_only=True)
        else:
            # A VAE file carries no config: read it with the checkpoint's (same architecture).
            digest = hashlib.sha1(json.dumps(dict(own.config), sort_keys=True, default=str).encode())
            config = self.cache_dir / "vae-config" / digest.hexdigest()[:12]
            if not (config / "config.json").is_file():
                own.save_config(config)
            vae = AutoencoderKL.from_single_file(str(path), config=str(config), local_files_only=True)
        self.loads += 1
        self._loaded = (key, vae)
        return vae
