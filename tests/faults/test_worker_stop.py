"""SIGTERM: a worker finishes a job that fits in its grace, hands back one that does not, and
announces that it leaves (`WorkerStopped`)."""

from __future__ import annotations

import signal
import time

import pytest

from contracts import JobStarted, WorkerStopped
from tests.faults.conftest import MakeFleet
from tests.faults.support import SLOW, record, submit, tally, wait_finished, wait_running
from tests.integration.helpers import read_log

pytestmark = pytest.mark.integration
TEST = "worker SIGTERM"
LONG = {**SLOW, "advanced_params": {"overwrite_step": 60}}


def test_sigterm_finishes_a_short_job_and_hands_back_a_long_one(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    patient = fleet.worker("patient")  # the default grace (25 s) covers a short job
    edge = fleet.edge()

    short = submit(edge.url)
    wait_running([patient])
    asked = time.monotonic()
    patient.kill(signal.SIGTERM)
    patient_left_in = time.monotonic() - asked
    # Meanwhile a worker with almost no grace comes up, with a long job for it.
    hasty = fleet.worker("hasty", FLEET_STOP_GRACE_S="0.5")
    long = submit(edge.url, LONG)
    wait_running([hasty])
    heir = fleet.worker("heir", wait=False)
    asked = time.monotonic()
    hasty.kill(signal.SIGTERM)
    hasty_left_in = time.monotonic() - asked
    assert patient.proc is not None and patient.proc.returncode == 0
    assert hasty.proc is not None and hasty.proc.returncode == 0
    assert "handed back: the worker is leaving" in hasty.log()

    views = wait_finished(edge.url, [short, long], timeout=240)
    assert [v["job_stage"] for v in views] == ["SUCCESS", "SUCCESS"]
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    starts = {
        job_id: [(e.worker_id, e.attempt) for e in events if isinstance(e, JobStarted) and e.job_id == job_id]
        for job_id in (short, long)
    }
    assert starts[short] == [("patient", 1)]  # finished where it ran
    assert starts[long] == [("hasty", 1), ("heir", 2)]  # handed back, finished by the other worker
    assert {e.worker_id for e in events if isinstance(e, WorkerStopped)} == {"patient", "hasty"}
    tally(fleet.fleet_env, [short, long]).assert_sound()
    assert heir.alive

    record(TEST, "worker with a short job running: SIGTERM to exit (job finished)", patient_left_in, "s")
    record(TEST, "worker with a long job, grace 0.5 s: SIGTERM to exit (job handed back)", hasty_left_in, "s")


def test_graceful_restarts_during_a_long_job_do_not_spend_its_deliveries(make_fleet: MakeFleet) -> None:
    """A rolling restart: five times in a row, the worker running the job leaves (SIGTERM, no grace)
    and a new one takes the job. A plain requeue would count each hand-back against the work queue's
    delivery limit (3) and dead-letter the job; a job queued again keeps its deliveries."""
    fleet = make_fleet()
    edge = fleet.edge()
    worker = fleet.worker("w0", FLEET_STOP_GRACE_S="0")
    job = submit(edge.url, LONG)
    began = time.monotonic()
    for n in range(1, 6):
        wait_running([worker], timeout=120)
        heir = fleet.worker(f"w{n}", wait=False, FLEET_STOP_GRACE_S="0" if n < 5 else "25")
        worker.kill(signal.SIGTERM)
        assert worker.proc is not None and worker.proc.returncode == 0
        worker = heir
    [view] = wait_finished(edge.url, [job], timeout=240)
    assert view["job_stage"] == "SUCCESS"
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    starts = [(e.worker_id, e.attempt) for e in events if isinstance(e, JobStarted) and e.job_id == job]
    assert starts == [(f"w{n}", n + 1) for n in range(6)]  # attempts keep rising across hand-backs
    tally(fleet.fleet_env, [job]).assert_sound()
    record(TEST, "rolling restart: hand-backs of one long job / its final attempt", "5 / 6")
    record(TEST, "rolling restart: submit to success, six workers started", time.monotonic() - began, "s")
