"""SIGKILL mid-job, three times in a row, with two workers: nothing accepted is lost or doubled."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest

from contracts import JobStarted, JobSucceeded
from tests.faults.conftest import MakeFleet
from tests.faults.support import record, submit_batch, tally, wait_finished, wait_running
from tests.integration.helpers import read_log

pytestmark = pytest.mark.integration
KILLS = 3


def test_workers_killed_mid_job_lose_nothing(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    workers = [fleet.worker("worker-1", wait=False), fleet.worker("worker-2", wait=False)]
    for worker in workers:
        worker.wait_log("worker.started", timeout=120)
    edge = fleet.edge()
    started = time.monotonic()
    jobs = submit_batch(edge.url, 8)
    killed: list[tuple[str, datetime]] = []
    for kill in range(KILLS):
        victim, job_id = wait_running(workers)
        victim.kill(signal.SIGKILL)
        killed.append((job_id, datetime.now(UTC)))
        # The same worker id comes back, as a supervisor restarts it; its log is kept apart.
        workers[workers.index(victim)] = fleet.worker(
            victim.name, wait=False, log_name=f"{victim.name}-{kill + 1}"
        )
    views = wait_finished(edge.url, jobs, timeout=240)
    counted = tally(fleet.fleet_env, jobs)
    counted.assert_sound()
    # Three kills cannot exhaust a job's four deliveries: every job succeeds.
    assert [v["job_stage"] for v in views] == ["SUCCESS"] * len(jobs)
    assert counted.outcomes == {"succeeded": len(jobs)}
    assert {job_id for job_id, _ in killed} <= set(jobs)
    # A kill that lands before the job's end makes it run again (a later attempt starts); one that lands
    # after its end was published (the log line lags) only repeats that end from the manifest.
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    ends = {e.job_id: e.occurred_at for e in events if isinstance(e, JobSucceeded)}
    rerun = {e.job_id for e in events if isinstance(e, JobStarted) and e.attempt > 1}
    cut_short = {job_id for job_id, at in killed if ends[job_id] > at}
    assert cut_short and cut_short <= rerun
    record(
        "worker SIGKILL x3",
        "jobs accepted / ended once / succeeded",
        f"{len(jobs)} / {counted.ended_once} / {counted.outcomes['succeeded']}",
    )
    record("worker SIGKILL x3", "redeliveries", counted.redeliveries)
    record("worker SIGKILL x3", "batch wall time", time.monotonic() - started, "s")
