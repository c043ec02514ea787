"""A job that runs past its deadline is stopped and fails; the broker's consumer timeout is far above
every deadline a worker accepts, so RabbitMQ never takes a long job away first."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from contracts.topology import CONSUMER_TIMEOUT_MS, Topology
from tests.faults.conftest import MakeFleet
from tests.faults.support import SLOW, record, submit, tally, wait_finished
from worker.settings import WorkerSettings

TEST = "job deadline"
DEADLINE_S = 2.0
ENDLESS = {**SLOW, "aspect_ratios_selection": "128*128", "advanced_params": {"overwrite_step": 200}}


def test_the_consumer_timeout_is_above_every_deadline() -> None:
    assert Topology().work.arguments["x-consumer-timeout"] == CONSUMER_TIMEOUT_MS  # type: ignore[index]
    assert WorkerSettings().job_deadline_s * 1000 < CONSUMER_TIMEOUT_MS
    with pytest.raises(ValidationError, match="job_deadline_s"):
        WorkerSettings(job_deadline_s=CONSUMER_TIMEOUT_MS / 1000)


@pytest.mark.integration
def test_a_job_past_its_deadline_fails_and_the_worker_goes_on(make_fleet: MakeFleet) -> None:
    fleet = make_fleet()
    worker = fleet.worker("worker-1", FLEET_JOB_DEADLINE_S=str(DEADLINE_S))
    edge = fleet.edge()
    started = time.monotonic()
    endless = submit(edge.url, ENDLESS)
    [stopped] = wait_finished(edge.url, [endless], timeout=120)
    stopped_in = time.monotonic() - started
    assert stopped["job_stage"] == "ERROR"
    assert "longer than its deadline of 2 s" in stopped["job_status"], stopped
    assert stopped_in < 60  # 200 steps at 128 px take far longer here
    after = submit(edge.url)
    [done] = wait_finished(edge.url, [after])
    assert done["job_stage"] == "SUCCESS" and worker.alive
    counted = tally(fleet.fleet_env, [endless, after])
    counted.assert_sound()
    assert counted.outcomes == {"deadline_exceeded": 1, "succeeded": 1}

    record(TEST, f"submit to `deadline_exceeded` with a {DEADLINE_S:g} s deadline", stopped_in, "s")
