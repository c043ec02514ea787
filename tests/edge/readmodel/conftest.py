"""A fresh read model for each test, on each backend: a SQLite file and a PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.readmodel import ReadModel

LOG = "t.log"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'read-model.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def model(database: str) -> AsyncIterator[ReadModel]:
    opened = await ReadModel.open(database, LOG, "edge-a")
    yield opened
    await opened.close()
