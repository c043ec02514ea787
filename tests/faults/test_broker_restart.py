"""RabbitMQ stopped and started again under load, on a private node: edge and workers reconnect by
themselves, nothing accepted is lost or doubled, and a submission while it is down is a quick 503."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from devservices.rabbit_node import RabbitNode
from tests.faults.conftest import MakeFleet
from tests.faults.support import SLOW, query, record, submit_batch, tally, wait_finished, wait_running
from tests.integration.helpers import finished, post

pytestmark = pytest.mark.integration
TEST = "broker restart"
LONGER = {**SLOW, "advanced_params": {"overwrite_step": 20}}


def test_broker_restart_loses_nothing(private_rabbit: RabbitNode, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(amqp_url=private_rabbit.amqp_url)
    workers = [fleet.worker("worker-1", wait=False), fleet.worker("worker-2", wait=False)]
    for worker in workers:
        worker.wait_log("worker.started", timeout=120)
    edge = fleet.edge()
    jobs = submit_batch(edge.url, 16, LONGER)
    wait_running(workers)
    private_rabbit.stop()
    # Stopped with jobs both queued and running (no event moves the projection while it is down).
    in_flight = sum(not finished(query(edge.url, job_id)) for job_id in jobs)
    asked = time.monotonic()
    refused = post(f"{edge.url}/v1/generation/text-to-image", {**SLOW, "async_process": True}, timeout=30)
    refused_in = time.monotonic() - asked
    assert refused.status_code == 503, refused.text
    assert "unavailable" in refused.json()["detail"]
    assert refused_in < 5
    # Reads still come from the projection.
    assert query(edge.url, jobs[0])["job_id"] == jobs[0]

    restarted = time.monotonic()
    private_rabbit.start()
    boot_s = time.monotonic() - restarted
    back = time.monotonic()
    while True:
        accepted = post(
            f"{edge.url}/v1/generation/text-to-image", {**SLOW, "async_process": True}, timeout=30
        )
        if accepted.status_code == 200:
            break
        assert accepted.status_code == 503, accepted.text
        assert time.monotonic() - back < 60, "the edge never reconnected"
        time.sleep(0.2)
    edge_back_in = time.monotonic() - back
    jobs.append(accepted.json()["job_id"])

    views = wait_finished(edge.url, jobs, timeout=240)
    all_done_in = time.monotonic() - back
    assert [v["job_stage"] for v in views] == ["SUCCESS"] * len(jobs)
    counted = tally(fleet.fleet_env, jobs)
    counted.assert_sound()
    assert counted.outcomes == {"succeeded": len(jobs)}
    # The edge re-subscribed to the log after what it had folded, not from the first offset again.
    resumed = re.findall(r"the log resumes at offset (\S+)", edge.log())
    assert resumed and all(offset.isdigit() for offset in resumed), resumed
    history = httpx.get(f"{edge.url}/v1/generation/job-queue", timeout=10).json()
    assert history["finished_size"] == len(jobs)
    assert all(w.alive for w in workers)
    assert in_flight >= 3

    record(TEST, "submission while down answered 503 in", refused_in, "s")
    record(TEST, "private node boot (rabbitmq-server to await_startup)", boot_s, "s")
    record(TEST, "edge accepting again after the broker was up", edge_back_in, "s")
    record(TEST, "whole batch finished after the broker was up", all_done_in, "s")
    record(
        TEST, "jobs accepted / ended once / succeeded", f"{len(jobs)} / {counted.ended_once} / {len(jobs)}"
    )
    record(TEST, "jobs queued or running when the broker stopped", in_flight)
    record(TEST, "redeliveries (re-runs)", counted.redeliveries)
    # A job running when the broker left runs on; its redelivery repeats its end from the manifest.
    repeated = sum(w.log().count("already finished, republishing") for w in workers)
    record(TEST, "ends repeated from a manifest after the restart", repeated)
