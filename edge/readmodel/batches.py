"""Folding the log in batches: events are buffered as they arrive and committed together, one
transaction per batch (by count, or after a short wait), so catching up a long log is not one
transaction per event.

A batch that could not be committed (the database is away) stays buffered and is tried again; nothing
past the committed position is ever recorded, so a crash loses only work the log will deliver again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from contracts import FleetEvent, JobMessage, JobProgressed, WebhookAttempted
from edge.readmodel.changes import Folded
from edge.readmodel.reading import read_logged
from edge.readmodel.store import ReadModel

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
MAX_WAIT_S = 0.05
RETRY_PAUSE_S = 1.0
AfterCommit = Callable[[int, list[FleetEvent]], Awaitable[None]]
Taken = Callable[[], Awaitable[None]]


class LogFolder:
    """Buffers `(offset, body)` from the log and folds them into `model`; `position` is the last offset
    committed. After each commit, `after_commit` gets the position and, in order, the events the read
    model does not keep (workers', edges'): an edge reading its own start marker has folded the rest.

    One drain task folds: a full buffer at once, a partial one after `max_wait_s`, and whatever came in
    during a fold right after it, so batches grow with the load. `taken` runs as a batch is taken to
    fold: the consumer returns its credit there, so the broker delivers the next batch while this one
    is folded and committed, and at most two prefetches' worth of events wait in memory.
    """

    def __init__(
        self,
        model: ReadModel,
        after_commit: AfterCommit,
        *,
        max_events: int = MAX_EVENTS,
        max_wait_s: float = MAX_WAIT_S,
        taken: Taken | None = None,
    ) -> None:
        self.model = model
        self.after_commit = after_commit
        self.taken = taken
        self.max_events = max_events
        self.max_wait_s = max_wait_s
        self.position = -1
        self.skipped = 0  # malformed events
        self.unknown = 0  # events of a type this version does not know (a newer producer's)
        self._pending: list[tuple[int | None, bytes]] = []
        self._flushing = asyncio.Lock()
        self._drain: asyncio.Task[None] | None = None

    def add(self, offset: int | None, body: bytes) -> None:
        """Buffer one event; the drain task folds it."""
        self._pending.append((offset, body))
        if self._drain is None or self._drain.done():
            wait = 0.0 if len(self._pending) >= self.max_events else self.max_wait_s
            self._drain = asyncio.create_task(self._drain_soon(wait))

    async def _drain_soon(self, wait: float) -> None:
        await asyncio.sleep(wait)
        while self._pending:
            if not await self.flush():
                await asyncio.sleep(RETRY_PAUSE_S)

    async def flush(self) -> bool:
        """Fold everything buffered now; on a database error keep it buffered (False) to try again."""
        async with self._flushing:
            batch, self._pending = self._pending, []
            if not batch:
                return True
            if self.taken is not None:
                await self.taken()
            folded, others = self._read(batch)
            offsets = [offset for offset, _ in batch if offset is not None]
            position = max(offsets) if offsets else None
            try:
                await self.model.fold(folded, position)
            except Exception:
                log.exception("folding %d events failed; they are tried again", len(batch))
                self._pending[:0] = batch
                return False
            if position is not None:
                self.position = max(self.position, position)
        await self.after_commit(self.position, others)
        return True

    def _read(self, batch: list[tuple[int | None, bytes]]) -> tuple[list[Folded], list[FleetEvent]]:
        folded: list[Folded] = []
        others: list[FleetEvent] = []
        for _, body in batch:
            try:
                event = read_logged(body)
            except ValidationError:
                self.skipped += 1
                log.warning("skipping an event this edge cannot read: %r", body[:200])
                continue
            if event is None:
                self.unknown += 1
                log.debug("skipping an event of a type this edge does not know: %r", body[:200])
                continue
            if isinstance(event, JobProgressed):
                self.model.live.step(event)
            elif isinstance(event, JobMessage | WebhookAttempted):
                folded.append(event)  # type: ignore[arg-type]
            else:
                others.append(event)  # type: ignore[arg-type]
        return folded, others

    async def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        await self.flush()
