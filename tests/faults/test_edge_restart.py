"""An edge killed and started again mid-load: its projection comes back complete from the log, and sync
callers waiting on the other edge get their images."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from contracts import JobQueued
from tests.faults.conftest import MakeFleet
from tests.faults.support import SLOW, query, record, submit_batch, tally, wait_finished, wait_running
from tests.integration.helpers import post, read_log

pytestmark = pytest.mark.integration
TEST = "edge restart"
SYNC_CALLERS = 3
BASE = ("--base-url", "http://fleet.test")


def test_edge_restart_mid_load_comes_back_complete(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    workers = [fleet.worker("worker-1", wait=False), fleet.worker("worker-2", wait=False)]
    for worker in workers:
        worker.wait_log("worker.started", timeout=120)
    # Both publish one base URL, as edges behind one load balancer do.
    first, other = fleet.edge("edge-a", *BASE), fleet.edge("edge-b", *BASE)
    with ThreadPoolExecutor(SYNC_CALLERS) as pool:
        sync_calls = [
            pool.submit(post, f"{other.url}/v1/generation/text-to-image", {**SLOW, "image_seed": 7 + i}, 240)
            for i in range(SYNC_CALLERS)
        ]
        jobs = submit_batch(first.url, 6)
        wait_running(workers)
        first.kill(signal.SIGKILL)
        killed = time.monotonic()
        restarted = fleet.edge("edge-a-restarted", *BASE, port=first.port)
        serving_in = time.monotonic() - killed
        answers = [call.result() for call in sync_calls]
    # Sync callers on the other edge finished with their images.
    assert [a.status_code for a in answers] == [200] * SYNC_CALLERS
    assert [a.json()[0]["finish_reason"] for a in answers] == ["SUCCESS"] * SYNC_CALLERS
    wait_finished(other.url, jobs)
    wait_finished(restarted.url, jobs)
    # The restarted edge knows every job, sync ones included, exactly as the edge that never went away.
    every_job = [
        e.job_id
        for e in read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
        if isinstance(e, JobQueued)
    ]
    assert len(every_job) == len(jobs) + SYNC_CALLERS
    for job_id in every_job:
        assert {**query(restarted.url, job_id), "job_step_preview": None} == {
            **query(other.url, job_id),
            "job_step_preview": None,
        }
    # (`last_job_id` is left out: an edge folds its own submissions before the log brings them.)
    sizes = [
        {
            k: v
            for k, v in httpx.get(f"{e.url}/v1/generation/job-queue", timeout=10).json().items()
            if k != "last_job_id"
        }
        for e in (restarted, other)
    ]
    assert sizes[0] == sizes[1] == {"running_size": 0, "finished_size": len(every_job)}
    counted = tally(fleet.fleet_env, every_job)
    counted.assert_sound()
    assert counted.outcomes == {"succeeded": len(every_job)}

    record(TEST, "killed edge serving again (process start + log replay)", serving_in, "s")
    record(TEST, "jobs known to the restarted edge / in the log", f"{len(every_job)} / {len(every_job)}")
    record(TEST, "sync callers on the other edge answered", f"{len(answers)} / {SYNC_CALLERS}")
