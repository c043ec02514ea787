"""Loading the engine once at worker start, writing the tiny default model when none is there."""

from __future__ import annotations

import logging

from worker.engine.loader import ModelLibrary
from worker.engine.sdxl import SDXLEngine
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def load_engine(settings: WorkerSettings) -> tuple[SDXLEngine, list[str]]:
    """Return the engine on the default checkpoint and the checkpoint names this worker has."""
    library = ModelLibrary(settings.models_dir, settings.cache_dir, default_name=settings.default_model)
    library.ensure_default()
    pipeline = library.load(library.default_name)
    log.info("loaded %s from %s", library.default_name, settings.models_dir)
    return SDXLEngine(pipeline, device=settings.device), library.checkpoints()
