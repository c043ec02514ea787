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

from contracts import FleetEvent, JobMessage, JobProgressed, WebhookAttempted, parse_event
from edge.readmodel.store import Folded, ReadModel

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
MAX_WAIT_S = 0.05
RETRY_PAUSE_S = 1.0
AfterCommit = Callable[[int, list[FleetEvent]], Awaitable[None]]


class LogFolder:
    """Buffers `(offset, body)` from the log and folds them into `model`; `position` is the last offset
    committed. After each commit, `after_commit` gets the position and, in order, the events the read
    model does not keep (workers', edges'): an edge reading its own start marker has folded the rest."""

    def __init__(
        self,
        model: ReadModel,
        after_commit: AfterCommit,
        *,
        max_events: int = MAX_EVENTS,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self.model = model
        self.after_commit = after_commit
        self.max_events = max_events
        self.max_wait_s = max_wait_s
        self.position = -1
        self.skipped = 0  # events this edge could not read
        self._pending: list[tuple[int | None, bytes]] = []
        self._flushing = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._failing = False

    async def add(self, offset: int | None, body: bytes) -> None:
        """Buffer one event; a full buffer is folded before this returns (the consumer's back-pressure)."""
        self._pending.append((offset, body))
        if len(self._pending) >= self.max_events:
            if self._failing:
                await asyncio.sleep(RETRY_PAUSE_S)
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(RETRY_PAUSE_S if self._failing else self.max_wait_s)
        self._timer = None
        await self.flush()

    async def flush(self) -> None:
        """Fold everything buffered now; on a database error keep it buffered and try again later."""
        async with self._flushing:
            batch, self._pending = self._pending, []
            if not batch:
                return
            folded, others = self._read(batch)
            offsets = [offset for offset, _ in batch if offset is not None]
            position = max(offsets) if offsets else None
            try:
                await self.model.fold(folded, position)
            except Exception:
                log.exception("folding %d events failed; they are tried again", len(batch))
                self._pending[:0] = batch
                self._failing = True
                if self._timer is None:
                    self._timer = asyncio.create_task(self._flush_soon())
                return
            self._failing = False
            if position is not None:
                self.position = max(self.position, position)
        await self.after_commit(self.position, others)

    def _read(self, batch: list[tuple[int | None, bytes]]) -> tuple[list[Folded], list[FleetEvent]]:
        folded: list[Folded] = []
        others: list[FleetEvent] = []
        for _, body in batch:
            try:
                event = parse_event(body)
            except ValidationError:
                self.skipped += 1
                log.warning("skipping an event this edge cannot read: %r", body[:200])
                continue
            if isinstance(event, JobProgressed):
                self.model.live.step(event)
            elif isinstance(event, JobMessage | WebhookAttempted):
                folded.append(event)  # type: ignore[arg-type]
            else:
                others.append(event)  # type: ignore[arg-type]
        return folded, others

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self.flush()
