"""The workers the edge has heard from lately, and the models and LoRAs they announce. Pure fold;
the caller passes the clock."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts import WorkerHeartbeat, WorkerStarted, WorkerStopped

WorkerEvent = WorkerStarted | WorkerHeartbeat | WorkerStopped


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    last_seen: datetime
    models: tuple[str, ...] = ()
    loras: tuple[str, ...] = ()


class WorkerRoster:
    """Folds worker events; a worker that left (`WorkerStopped`) or fell silent for `stale_after` is
    forgotten, so `all-models` lists only what a live worker can run."""

    def __init__(self, stale_after: timedelta) -> None:
        self.stale_after = stale_after
        self._workers: dict[str, WorkerView] = {}
        self._changed = asyncio.Condition()

    async def apply(self, event: WorkerEvent) -> None:
        match event:
            case WorkerStopped():
                self._workers.pop(event.worker_id, None)
            case WorkerStarted():
                known = self._workers.get(event.worker_id)
                if known is None or event.occurred_at >= known.last_seen:
                    loras = known.loras if known else ()
                    self._workers[event.worker_id] = WorkerView(
                        event.worker_id, event.occurred_at, tuple(event.models), loras
                    )
            case WorkerHeartbeat():
                self._workers[event.worker_id] = WorkerView(
                    event.worker_id, event.occurred_at, tuple(event.models), tuple(event.loras)
                )
        async with self._changed:
            self._changed.notify_all()

    def alive(self, now: datetime) -> list[WorkerView]:
        return [w for w in self._workers.values() if now - w.last_seen <= self.stale_after]

    def models(self, now: datetime) -> tuple[list[str], list[str]]:
        """(model file names, LoRA file names): the sorted union over live workers."""
        alive = self.alive(now)
        return (
            sorted({m for w in alive for m in w.models}),
            sorted({lora for w in alive for lora in w.loras}),
        )

    async def wait_heard_since(self, since: datetime, worker_ids: set[str], timeout: float) -> None:  # noqa: ASYNC109
        """Wait until each of `worker_ids` has been heard from at or after `since` (or the timeout)."""

        def done() -> bool:
            return all((w := self._workers.get(i)) is None or w.last_seen >= since for i in worker_ids)

        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(done), timeout)
