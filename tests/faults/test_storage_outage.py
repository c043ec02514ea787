"""The S3 endpoint stopped mid-job, on a private server: a job is retried across a short outage and
fails with a clear reason when storage stays away; it never succeeds without its file."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import MakeFleet
from tests.faults.support import (
    RestartableS3,
    query,
    record,
    submit,
    submit_batch,
    tally,
    wait_finished,
    wait_running,
)

pytestmark = pytest.mark.integration
TEST = "S3 outage"
RETRY_S = 1.0  # the pauses before redeliveries are 1, 2 and 3 s: about 6 s of outage is survived


def test_storage_outage_retries_then_fails_clearly(private_s3: RestartableS3, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(s3_endpoint=private_s3.endpoint)
    worker = fleet.worker("worker-1", FLEET_STORAGE_RETRY_S=str(RETRY_S))
    edge = fleet.edge()

    # Storage goes away for good while a job runs: the job fails, saying why.
    doomed = submit(edge.url)
    wait_running([worker])
    down = time.monotonic()
    private_s3.stop()
    stop_s = time.monotonic() - down
    [failed] = wait_finished(edge.url, [doomed], timeout=120)
    failed_in = time.monotonic() - down
    assert failed["job_stage"] == "ERROR", failed
    assert "object storage failed on all 4 attempts" in failed["job_status"], failed

    # Storage comes back within the retries: the jobs succeed, with their files.
    private_s3.start()
    jobs = submit_batch(edge.url, 3)
    wait_running([worker])
    private_s3.stop()
    time.sleep(2 * RETRY_S)
    private_s3.start()
    views = wait_finished(edge.url, jobs, timeout=120)
    assert [v["job_stage"] for v in views] == ["SUCCESS"] * len(jobs)
    assert query(edge.url, doomed)["job_stage"] == "ERROR"

    counted = tally(fleet.fleet_env, [doomed, *jobs])
    counted.assert_sound()
    assert counted.outcomes == {"storage_unavailable": 1, "succeeded": len(jobs)}
    # Handed back three times for the doomed job, at least once across the short outage.
    handed_back = worker.log().count("met a storage fault")
    assert handed_back >= 4
    assert worker.alive

    record(TEST, "`weed mini` stop (SIGTERM to exit)", stop_s, "s")
    record(TEST, "stop command to the job failed `storage_unavailable`", failed_in, "s")
    record(TEST, "jobs across a 2 s outage: succeeded with files", f"{len(jobs)} / {len(jobs)}")
    record(TEST, "jobs handed back for a storage fault (3 are the failed job's)", handed_back)
