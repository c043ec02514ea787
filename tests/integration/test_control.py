"""Cancelling one job by id, wherever it is, and `Idempotency-Key` across edges and restarts."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest

from tests.fleet import Fleet
from tests.integration.helpers import SMALL, finished, poll, post, read_log, terminal_events

pytestmark = pytest.mark.integration

# Long enough to be cancelled mid-run on a loaded CPU, at 128×128.
LONG = {**SMALL, "aspect_ratios_selection": "128*128", "async_process": True}
LONG["advanced_params"] = {"overwrite_step": 60}


def cancel(edge_url: str, job_id: str) -> httpx.Response:
    return httpx.post(f"{edge_url}/v1/generation/job/{job_id}/cancel", timeout=30)


def events_of(events: list[Any], job_id: str, kind: str) -> list[Any]:
    return [e for e in events if getattr(e, "job_id", None) == job_id and e.type == kind]


def step_of(job: dict[str, Any]) -> int:
    """The step a running job reports (`Step 7/60 in the 1-th Sampling`), 0 before the first."""
    status = job["job_status"] or ""
    return int(status.split()[1].split("/")[0]) if status.startswith("Step ") else 0


def test_cancel_a_running_job_stops_it_within_steps(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    job = post(f"{edge.url}/v1/generation/text-to-image", {**LONG, "image_seed": 4}).json()
    at_cancel = poll(edge.url, job["job_id"], lambda j: j["job_stage"] == "RUNNING" and step_of(j) >= 3)
    answer = cancel(edge.url, job["job_id"])
    assert answer.status_code == 202
    assert answer.json() == {"job_id": job["job_id"], "job_stage": "RUNNING", "cancel_requested": True}
    steps = [step_of(at_cancel)]
    done = poll(edge.url, job["job_id"], lambda j: steps.append(step_of(j)) is None and finished(j))
    assert done["job_stage"] == "SUCCESS" and done["job_status"] == "Cancelled: cancelled"
    assert done["job_result"] == []
    # It stopped a few steps on (the request crosses the broker while the loop runs), far from 60.
    assert max(steps) - steps[0] <= 15, steps
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    assert len(events_of(events, job["job_id"], "job.cancel_requested")) == 1
    [ended] = terminal_events(events, job["job_id"])
    assert ended.type == "job.cancelled" and ended.reason == "cancelled" and ended.images == []


def test_cancel_a_queued_job_ends_it_without_running_it(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    running = post(f"{edge.url}/v1/generation/text-to-image", LONG).json()
    queued = post(f"{edge.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()
    poll(edge.url, running["job_id"], lambda j: j["job_stage"] == "RUNNING")
    answer = cancel(edge.url, queued["job_id"])
    assert (answer.status_code, answer.json()["job_stage"]) == (202, "WAITING")
    assert cancel(edge.url, queued["job_id"]).status_code == 202  # asking twice is harmless
    assert cancel(edge.url, running["job_id"]).status_code == 202  # frees the worker sooner
    done = poll(edge.url, queued["job_id"], finished, timeout=120)
    assert done["job_stage"] == "SUCCESS" and done["job_status"] == "Cancelled: cancelled"
    assert done["job_result"] == []
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    assert events_of(events, queued["job_id"], "job.started") == []
    for job_id in (queued["job_id"], running["job_id"]):
        [ended] = terminal_events(events, job_id)
        assert ended.type == "job.cancelled"


@pytest.mark.parametrize("memory_s", ["3600", "0"])
def test_a_worker_started_after_the_cancel_still_skips_the_job(fleet: Fleet, memory_s: str) -> None:
    """Read back from the cancels stream, or (a worker that reads none of it back, as for a job that
    waited longer than its memory) from the cancel's marker in storage."""
    edge = fleet.edge()
    job = post(f"{edge.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()
    assert cancel(edge.url, job["job_id"]).status_code == 202
    fleet.worker(FLEET_CANCEL_MEMORY_S=memory_s)
    done = poll(edge.url, job["job_id"], finished, timeout=120)
    assert done["job_status"] == "Cancelled: cancelled"
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    assert events_of(events, job["job_id"], "job.started") == []
    assert [e.type for e in terminal_events(events, job["job_id"])] == ["job.cancelled"]


def test_cancel_a_finished_or_unknown_job(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    job = post(f"{edge.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()
    poll(edge.url, job["job_id"], finished)
    late = cancel(edge.url, job["job_id"])
    assert late.status_code == 409
    assert late.json() == {
        "detail": "The job already ended.",
        "job_id": job["job_id"],
        "job_stage": "SUCCESS",
    }
    unknown = cancel(edge.url, "no-such-job")
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Job not found"})
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    assert [e.type for e in terminal_events(events, job["job_id"])] == ["job.succeeded"]
    assert events_of(events, job["job_id"], "job.cancel_requested") == []


def keyed(url: str, body: dict[str, Any], key: str, **headers: str) -> httpx.Response:
    return httpx.post(url, json=body, headers={"Idempotency-Key": key, **headers}, timeout=120)


def test_idempotency_key_holds_across_edges_and_restarts(fleet: Fleet) -> None:
    fleet.worker()
    # One base URL, as edges behind one load balancer have, so both render the same result URLs.
    base = ("--base-url", "http://fleet.test")
    first = fleet.edge("edge-1", *base)
    body = {**SMALL, "async_process": True, "prompt": "a lighthouse"}
    route = "/v1/generation/text-to-image"
    made = keyed(f"{first.url}{route}", body, "order-17").json()
    again = keyed(f"{first.url}{route}", body, "order-17")
    assert again.json()["job_id"] == made["job_id"] == again.headers["X-Fleet-Job-Id"]
    poll(first.url, made["job_id"], finished)
    second = fleet.edge("edge-2", *base)
    assert keyed(f"{second.url}{route}", body, "order-17").json()["job_id"] == made["job_id"]
    conflict = keyed(f"{second.url}{route}", {**body, "prompt": "a castle"}, "order-17")
    assert conflict.status_code == 409 and made["job_id"] in conflict.json()["detail"]
    # Another API key is another scope: the same key text makes a new job there.
    other = keyed(f"{second.url}{route}", body, "order-17", **{"X-API-KEY": "tenant-b"}).json()
    assert other["job_id"] != made["job_id"]
    # Sync: the repeat waits for and answers with the same job's results.
    sync = {**SMALL, "prompt": "a harbour"}
    items = keyed(f"{second.url}{route}", sync, "order-18")
    repeat = keyed(f"{first.url}{route}", sync, "order-18")
    assert repeat.headers["X-Fleet-Job-Id"] == items.headers["X-Fleet-Job-Id"]
    assert repeat.json() == items.json() and items.json()[0]["finish_reason"] == "SUCCESS"
    first.kill(signal.SIGKILL)
    third = fleet.edge("edge-3", *base)
    assert keyed(f"{third.url}{route}", body, "order-17").json()["job_id"] == made["job_id"]
    events = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    queued = [e for e in events if e.type == "job.queued"]
    assert len(queued) == 3  # order-17, order-17 under tenant-b, order-18
