"""The edge's durable read model: job views in a database, folded from the log in batches, each batch
committed with the log position it reached (the tracking row), so a restart resumes where it stopped.

SQLite (one edge, a file) or PostgreSQL (a fleet of edges sharing one read model), through SQLAlchemy
Core. Folding is idempotent (the pure `apply` guards each job by its `seq`), so a batch folded twice, by
a crash before its commit or by two edges, changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, tuple_, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from contracts import JobEvent
from edge.readmodel.changes import Folded, JobState, changed_jobs
from edge.readmodel.database import async_url, sqlite_setup
from edge.readmodel.live import LiveProgress
from edge.readmodel.rows import from_row, to_row
from edge.readmodel.schema import FINISHED, FINISHED_COUNT, UNFINISHED, counters, jobs, metadata, tracking
from edge.readmodel.views import JobView

# The queue part of job-history is every unfinished job; this bounds it if jobs are lost unfinished.
MAX_QUEUE_LISTED = 1000
DAY_MS = 86_400_000
# Trimming by age runs at most this often: it is a range delete, not something every batch needs.
AGE_TRIM_EVERY_S = 60.0


@dataclass(frozen=True)
class HistoryPage:
    """Unfinished jobs in queue order, and one page of finished jobs, newest first."""

    queue: list[JobView]
    history: list[JobView]


@dataclass(frozen=True)
class QueueCounts:
    running: int
    finished: int
    last_job_id: str | None


class ReadModel:
    """Job views for the read endpoints, kept in a database by `fold`; live progress in memory.

    `log` names the stream folded (one tracking row per reader of it); `reader` is this edge.
    `history_limit` keeps at most that many finished jobs (0 = all) and `history_days` drops finished jobs
    older than that (0 = never).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        log: str,
        reader: str,
        *,
        history_limit: int = 0,
        history_days: float = 0,
    ) -> None:
        self.engine = engine
        self.log = log
        self.reader = reader
        self.history_limit = history_limit
        self.history_days = history_days
        self.live = LiveProgress()
        # Set once the edge has folded the log up to its own start marker: until then, a job missing
        # here may only be a job not folded yet.
        self.current = asyncio.Event()
        # One writer per process: SQLite allows one, and PostgreSQL folds take turns anyway.
        self._write = asyncio.Lock()
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._age_trimmed_at = 0.0

    @classmethod
    async def open(
        cls,
        url: str,
        log: str,
        reader: str,
        *,
        history_limit: int = 0,
        history_days: float = 0,
        engine_options: Mapping[str, Any] | None = None,
    ) -> ReadModel:
        """Connect to `url` (SQLite file or PostgreSQL), creating the tables and this reader's row.
        `engine_options` go to SQLAlchemy's `create_async_engine` (a pool class, say)."""
        url = async_url(url)
        engine = create_async_engine(url, pool_pre_ping=True, **(engine_options or {}))
        if engine.dialect.name == "sqlite":
            sqlite_setup(engine, url)
        model = cls(engine, log, reader, history_limit=history_limit, history_days=history_days)
        await model._create()
        return model

    async def _create(self) -> None:
        # Edges starting together race to create the tables: whoever loses finds them there and retries.
        for last_try in (False, True):
            try:
                async with self.engine.begin() as conn:
                    await conn.run_sync(metadata.create_all)
                    await _insert_missing(conn, counters, {"name": FINISHED_COUNT}, {"value": 0})
                    key = {"log": self.log, "reader": self.reader}
                    await _insert_missing(conn, tracking, key, {"position": -1, "updated_ms": _now_ms()})
                return
            except (IntegrityError, DBAPIError):
                if last_try:
                    raise

    async def close(self) -> None:
        await self.engine.dispose()

    async def position(self) -> int:
        """The last log offset folded into this database by any reader of the log (-1: none).

        Any reader's position will do: each one committed every event up to it into the same rows.
        """
        async with self.engine.connect() as conn:
            found = await conn.scalar(reached(self.log))
        return -1 if found is None else int(found)

    async def fold(self, events: Sequence[Folded], position: int | None = None) -> dict[str, JobView | None]:
        """Apply a batch and, when given, store `position` as this reader's, in one transaction.

        Returns the changed jobs' new views (None for a deleted job). After the commit, waiters on a job
        of the batch that has ended are woken and its live progress is dropped, whether this fold ended
        it or another edge's fold into the same database did (the batch then changes nothing).
        """
        async with self._write, self.engine.begin() as conn:
            # Touch the counters row first: in PostgreSQL it is the lock that makes folds take turns.
            await conn.execute(
                update(counters).where(counters.c.name == FINISHED_COUNT).values(value=counters.c.value)
            )
            known = await self._load(conn, {e.job_id for e in events})
            changed = changed_jobs(known, events)
            await self._write_rows(conn, known, changed)
            delta = sum(job.kept_finished for job in changed.values()) - sum(
                known[job_id].kept_finished for job_id in changed if job_id in known
            )
            await _add_finished(conn, delta)
            await self._trim(conn)
            if position is not None:
                await conn.execute(
                    update(tracking)
                    .where(tracking.c.log == self.log, tracking.c.reader == self.reader)
                    .where(tracking.c.position < position)
                    .values(position=position, updated_ms=_now_ms())
                )
        ended = {job_id for job_id, job in {**known, **changed}.items() if job.deleted or job.view.finished}
        return self._settle(changed, ended)

    async def apply(self, event: JobEvent) -> JobView | None:
        """Fold one event now, outside the log's order (the edge's own writes, read at once)."""
        changed = await self.fold([event])
        return changed[event.job_id] if event.job_id in changed else await self.get(event.job_id)

    async def _load(self, conn: AsyncConnection, job_ids: set[str]) -> dict[str, JobState]:
        if not job_ids:
            return {}
        rows = await conn.execute(select(jobs).where(jobs.c.job_id.in_(job_ids)))
        return {row["job_id"]: JobState(from_row(row), row["deleted"]) for row in rows.mappings()}

    async def _write_rows(
        self, conn: AsyncConnection, known: dict[str, JobState], changed: dict[str, JobState]
    ) -> None:
        new = [to_row(job.view, job.deleted) for job_id, job in changed.items() if job_id not in known]
        if new:
            await conn.execute(insert(jobs), new)
        updated = []
        for job_id, job in changed.items():
            if job_id in known:
                row = to_row(job.view, job.deleted)
                row["_id"] = row.pop("job_id")
                updated.append(row)
        if updated:
            await conn.execute(update(jobs).where(jobs.c.job_id == bindparam("_id")), updated)

    async def _trim(self, conn: AsyncConnection) -> None:
        """Drop the oldest finished jobs beyond `history_limit` and those older than `history_days`."""
        dropped = 0
        if self.history_days and time.monotonic() - self._age_trimmed_at >= AGE_TRIM_EVERY_S:
            self._age_trimmed_at = time.monotonic()
            cutoff = _now_ms() - int(self.history_days * DAY_MS)
            done = await conn.execute(jobs.delete().where(FINISHED, jobs.c.finished_ms < cutoff))
            dropped += done.rowcount
        if self.history_limit:
            oldest_kept = await conn.execute(
                select(jobs.c.finished_ms, jobs.c.job_id)
                .where(FINISHED)
                .order_by(jobs.c.finished_ms.desc(), jobs.c.job_id.desc())
                .offset(self.history_limit - 1)
                .limit(1)
            )
            edge = oldest_kept.first()
            if edge is not None:
                older = tuple_(jobs.c.finished_ms, jobs.c.job_id) < tuple_(edge[0], edge[1])
                done = await conn.execute(jobs.delete().where(FINISHED, older))
                dropped += done.rowcount
        if dropped:
            await _add_finished(conn, -dropped)

    def _settle(self, changed: dict[str, JobState], ended: set[str]) -> dict[str, JobView | None]:
        """The changed jobs' views; waiters on the `ended` jobs woken, their live progress dropped."""
        for job_id in ended:
            self.live.ended(job_id)
            for waiter in self._waiters.get(job_id, ()):
                if not waiter.done():
                    waiter.set_result(None)
        return {job_id: None if job.deleted else job.view for job_id, job in changed.items()}

    async def get(self, job_id: str) -> JobView | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.job_id == job_id))).mappings().first()
        if row is None or row["deleted"]:
            return None
        return self.live.overlay(from_row(row))

    async def by_key(self, idempotency_key: str) -> JobView | None:
        """The job first accepted under this (scoped) idempotency key, while it is kept."""
        query = (
            select(jobs)
            .where(jobs.c.idempotency_key == idempotency_key, jobs.c.queued_ms.is_not(None))
            .where(jobs.c.deleted.is_(False))
            .order_by(jobs.c.queued_ms, jobs.c.job_id)
            .limit(1)
        )
        return await self._one(query)

    async def unfinished_count(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(jobs).where(UNFINISHED)) or 0)

    async def counts(self) -> QueueCounts:
        """job-queue: unfinished jobs, finished jobs kept, and the newest job."""
        async with self.engine.connect() as conn:
            running = await conn.scalar(select(func.count()).select_from(jobs).where(UNFINISHED))
            finished = await conn.scalar(select(counters.c.value).where(counters.c.name == FINISHED_COUNT))
            last = await conn.scalar(
                select(jobs.c.job_id)
                .where(jobs.c.queued_ms.is_not(None))
                .order_by(jobs.c.queued_ms.desc(), jobs.c.job_id.desc())
                .limit(1)
            )
        return QueueCounts(int(running or 0), int(finished or 0), last)

    async def page(self, page: int, page_size: int, job_id: str | None = None) -> HistoryPage:
        """Fooocus-API's job-history: filtered by `job_id` when given, else paged (which it never did)."""
        if job_id is not None:
            view = await self.get(job_id)
            views = [view] if view is not None else []
            return HistoryPage([v for v in views if not v.finished], [v for v in views if v.finished])
        queue = await self._many(
            select(jobs).where(UNFINISHED).order_by(jobs.c.queued_ms, jobs.c.job_id).limit(MAX_QUEUE_LISTED)
        )
        history = await self._many(
            select(jobs)
            .where(FINISHED)
            .order_by(jobs.c.finished_ms.desc(), jobs.c.job_id.desc())
            .offset(page * page_size)
            .limit(page_size)
        )
        return HistoryPage(queue, history)

    async def _one(self, query: object) -> JobView | None:
        found = await self._many(query)
        return found[0] if found else None

    async def _many(self, query: object) -> list[JobView]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()  # type: ignore[call-overload]
        return [self.live.overlay(from_row(row)) for row in rows]

    async def wait_finished(self, job_id: str, timeout: float | None) -> JobView | None:  # noqa: ASYNC109
        """Wait until the job has its terminal event; None on timeout if it is unknown (or deleted)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(waiter)
        try:
            view = await self.get(job_id)
            if view is None or not view.finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, timeout)
                view = await self.get(job_id)
            return view
        finally:
            waiting = self._waiters.get(job_id, set())
            waiting.discard(waiter)
            if not waiting:
                self._waiters.pop(job_id, None)


async def _add_finished(conn: AsyncConnection, delta: int) -> None:
    if delta:
        await conn.execute(
            update(counters).where(counters.c.name == FINISHED_COUNT).values(value=counters.c.value + delta)
        )


async def _insert_missing(conn: AsyncConnection, table: object, key: dict, values: dict) -> None:
    found = await conn.scalar(select(func.count()).select_from(table).filter_by(**key))  # type: ignore[arg-type]
    if not found:
        await conn.execute(insert(table).values(**key, **values))  # type: ignore[arg-type]


def reached(log: str) -> Select[tuple[int | None]]:
    """The highest position any reader of `log` has committed (NULL: none)."""
    return select(func.max(tracking.c.position)).where(tracking.c.log == log)


def _now_ms() -> int:
    return int(time.time() * 1000)
