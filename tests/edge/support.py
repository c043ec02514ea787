"""A read model for edge unit tests that drive handlers with `asyncio.run`, one loop per call."""

from __future__ import annotations

import asyncio
import itertools
import tempfile

from sqlalchemy.pool import NullPool

from edge.readmodel import ReadModel

_FILES = tempfile.TemporaryDirectory(prefix="fleet-read-models-")
_NAMES = itertools.count()


def sqlite_model(*, current: bool = True, **options: int) -> ReadModel:
    """A fresh read model in a SQLite file, `current` (caught up with the log) unless told otherwise.
    No pool: a pooled connection belongs to the loop that made it, and these tests run several loops."""
    url = f"sqlite:///{_FILES.name}/{next(_NAMES)}.db"
    engine_options = {"poolclass": NullPool}
    model = asyncio.run(ReadModel.open(url, "t.log", "edge-t", engine_options=engine_options, **options))
    if current:
        model.current.set()
    return model
