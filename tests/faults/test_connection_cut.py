"""A worker's broker connection cut mid-job while a second worker is idle: the broker redelivers the job
to the idle worker, which must not run it again while the first run goes on. Exactly one run, one
terminal event and one webhook delivery."""

from __future__ import annotations

import time

import pytest

from contracts import JobStarted
from tests.faults.conftest import MakeFleet
from tests.faults.support import (
    SLOW,
    cut_broker_connections,
    record,
    submit,
    tally,
    wait_finished,
    wait_running,
)
from tests.integration.helpers import read_log, terminal_events, webhook_listener

pytestmark = pytest.mark.integration
# Long enough to be still running at the cut: one image of 150 steps (about 2 s) once ended 30 ms
# before it. Two images of 200 steps (the most a request may ask) take about 5 s.
LONG = {**SLOW, "image_number": 2, "advanced_params": {"overwrite_step": 200}}


def test_a_cut_connection_mid_job_runs_it_once_with_one_end_and_one_webhook(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    with webhook_listener() as (hook, received):
        edge = fleet.edge(FLEET_WEBHOOK_ALLOW="127.0.0.0/8")
        workers = [fleet.worker("a"), fleet.worker("b")]
        job = submit(edge.url, LONG, webhook_url=hook)
        first, _ = wait_running(workers, timeout=120)
        [idle] = [w for w in workers if w is not first]  # ready to take the redelivery at once
        time.sleep(1)  # a few steps in
        assert first.proc is not None
        cut_at = time.monotonic()
        assert cut_broker_connections(first.proc.pid) >= 1
        [view] = wait_finished(edge.url, [job], timeout=240)
        finished_in = time.monotonic() - cut_at
        time.sleep(3)  # room for a second webhook, were one coming
        assert view["job_stage"] == "SUCCESS"
        events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
        starts = [(e.worker_id, e.attempt) for e in events if isinstance(e, JobStarted) and e.job_id == job]
        assert starts == [(first.name, 1)]  # the idle worker waited for the first run instead of running it
        assert len(terminal_events(events, job)) == 1
        assert len({r["headers"].get("webhook-id") for r in received}) == len(received) == 1
        assert f"is still run by {first.name}" in idle.log()
        tally(fleet.fleet_env, [job]).assert_sound()
    record("connection cut", "cut to the job's end (one run)", finished_in, "s")
