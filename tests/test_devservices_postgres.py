"""The PostgreSQL dev service: ``postgres_url`` is a fresh database that answers, a new one each time."""

from __future__ import annotations

import asyncpg
import pytest

from devservices.postgres import database_url

pytestmark = pytest.mark.integration


async def _current_database(url: str, earlier: list[str]) -> str:
    """The database ``url`` names, after checking it answers and that the ``earlier`` ones were dropped."""
    # asyncpg speaks plain libpq URLs, not SQLAlchemy's "+asyncpg" dialect form.
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        assert await connection.fetchval("select 1") == 1
        left = await connection.fetch("select datname from pg_database where datname = any($1)", earlier)
        assert not left, f"postgres_url did not drop {[row['datname'] for row in left]}"
        return str(await connection.fetchval("select current_database()"))
    finally:
        await connection.close()


def test_database_url_is_the_trusted_superuser_with_asyncpg() -> None:
    assert database_url("db", 5433, "fleet") == "postgresql+asyncpg://postgres@db:5433/fleet"


_seen: list[str] = []  # databases the earlier uses below got, in this session


@pytest.mark.parametrize("use", [1, 2])
async def test_each_use_gets_a_fresh_database_that_answers(postgres_url: str, use: int) -> None:
    name = await _current_database(postgres_url, _seen)
    assert postgres_url.endswith(f"/{name}")
    assert name.startswith("fleet_test_")
    assert name not in _seen, "two uses of postgres_url shared a database"
    _seen.append(name)
