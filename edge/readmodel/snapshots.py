"""Snapshots of a SQLite read model in object storage, so a new edge folds only the log's tail.

An edge on SQLite uploads a copy of its read model every `every_s` while its fold moves on: `VACUUM INTO`
writes a compact, transaction-consistent copy while folds go on (WAL), and the copy carries the tracking
rows, that is the log position its rows reached. An edge whose SQLite file does not exist yet downloads
the latest copy first, and `ReadModel.position` then resumes the fold after that position instead of
the log's first offset. Any edge's copy will do: every edge folds the same log into the same rows.

A PostgreSQL read model needs none: a new edge joins the shared database warm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from storage import ObjectNotFound, ObjectStore, read_model_key

log = logging.getLogger(__name__)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite read model URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


async def seed(store: ObjectStore, url: str, log_name: str) -> bool:
    """Download the latest snapshot into a SQLite read model that does not exist yet.

    Returns whether it did. A read model that exists, a PostgreSQL one, or no snapshot: nothing happens.
    """
    path = sqlite_file(url)
    if path is None or path.exists():
        return False
    try:
        await store.get_file(read_model_key(log_name), path)
    except ObjectNotFound:
        return False
    return True


async def take(store: ObjectStore, url: str, log_name: str) -> None:
    """Upload a consistent copy of the SQLite read model at `url` as the log's latest snapshot."""
    path = sqlite_file(url)
    if path is None:
        raise ValueError(f"only a SQLite read model is snapshotted, not {url!r}")
    copy = path.with_name(f"{path.name}.snapshot")
    copy.unlink(missing_ok=True)  # a copy left by a crash: VACUUM INTO refuses to overwrite
    try:
        await asyncio.to_thread(_vacuum_into, path, copy)
        await store.put_file(read_model_key(log_name), copy)
    finally:
        copy.unlink(missing_ok=True)


def _vacuum_into(source: Path, target: Path) -> None:
    with contextlib.closing(sqlite3.connect(source, timeout=30)) as conn:
        conn.execute("VACUUM INTO ?", (str(target),))


async def keep_taking(
    store: ObjectStore, url: str, log_name: str, position: Callable[[], int], every_s: float
) -> None:
    """Take a snapshot every `every_s` when the fold has moved since the last one; a failed snapshot is
    logged and tried again at the next turn (the read model itself does not depend on it)."""
    taken_at = -1
    while True:
        await asyncio.sleep(every_s)
        reached = position()
        if reached <= taken_at:
            continue
        try:
            await take(store, url, log_name)
        except Exception:
            log.warning(
                "the read model's snapshot could not be uploaded; next try in %.0f s", every_s, exc_info=True
            )
            continue
        taken_at = reached
        log.info("uploaded a snapshot of the read model at log offset %d", reached)
