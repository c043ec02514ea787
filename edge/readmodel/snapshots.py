"""Snapshots of a SQLite read model in object storage, so a new edge folds only the log's tail.

An edge on SQLite uploads a copy of its read model every `every_s` while its fold moves on: `VACUUM INTO`
writes a compact, transaction-consistent copy while folds go on (WAL), and the copy carries the tracking
rows, that is the log position its rows reached. An edge whose SQLite file does not exist yet downloads
the latest copy first, and `ReadModel.position` then resumes the fold after that position instead of
the log's first offset. Any edge's copy will do: every edge folds the same log into the same rows; a
copy past the log's end was folded from an earlier log of that name (a new broker) and is not used.

A PostgreSQL read model needs none: a new edge joins the shared database warm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from edge.readmodel.store import reached
from storage import ObjectNotFound, ObjectStore, read_model_key

log = logging.getLogger(__name__)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite read model URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


async def seed(store: ObjectStore, url: str, log_name: str, log_end: Callable[[], Awaitable[int]]) -> bool:
    """Download the latest snapshot into a SQLite read model that does not exist yet.

    Returns whether it did. A read model that exists, a PostgreSQL one, or no snapshot: nothing happens.
    A snapshot whose position is past `log_end()` (the log's last offset) was folded from another log,
    one deleted and declared again on a new broker: it is not used, and the edge folds the log instead.
    """
    path = sqlite_file(url)
    if path is None or path.exists():
        return False
    download = path.with_name(f"{path.name}.seed")
    try:
        await store.get_file(read_model_key(log_name), download)
    except ObjectNotFound:
        return False
    try:
        position, end = await asyncio.to_thread(_position, download, log_name), await log_end()
        if position > end:
            log.warning(
                "the read model's snapshot reached log offset %d, past the log's end (%d): it was folded from"
                " another log (declared again on a new broker); this edge folds the log instead",
                position,
                end,
            )
            return False
        download.replace(path)
        return True
    finally:
        download.unlink(missing_ok=True)


def _position(database: Path, log_name: str) -> int:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            found = conn.scalar(reached(log_name))
    finally:
        engine.dispose()
    return -1 if found is None else int(found)


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
        folded_to = position()
        if folded_to <= taken_at:
            continue
        try:
            await take(store, url, log_name)
        except Exception:
            log.warning(
                "the read model's snapshot could not be uploaded; next try in %.0f s", every_s, exc_info=True
            )
            continue
        taken_at = folded_to
        log.info("uploaded a snapshot of the read model at log offset %d", folded_to)
