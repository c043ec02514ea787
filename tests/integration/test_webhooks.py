"""Webhooks across processes: Standard Webhooks signatures, retries on a schedule through the delay
queues (also across an edge restart), timeouts, a receiver that is down, and the delivery log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import signal
import time
from typing import Any

import httpx
import pytest

from contracts import JobSucceeded, OutputImage, job_seq
from tests.fleet import Edge, Fleet, free_port
from tests.integration.helpers import (
    SMALL,
    finished,
    poll,
    post,
    publish_events,
    wait_for,
    webhook_listener,
)

pytestmark = pytest.mark.integration

SECRET_BYTES = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
RETRYING = {
    # The receivers listen on loopback: allowed for webhooks only, as an operator would.
    "FLEET_WEBHOOK_ALLOW": "127.0.0.0/8",
    "FLEET_WEBHOOK_SECRET": SECRET,
    "FLEET_WEBHOOK_RETRY_DELAYS_S": "1,2",
    "FLEET_WEBHOOK_TIMEOUT_S": "1",
}


def reference_signature(webhook_id: str, timestamp: str, raw: bytes) -> str:
    """Standard Webhooks v1, computed here from the secret's bytes, independently of the edge."""
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + raw
    return "v1," + base64.b64encode(hmac.new(SECRET_BYTES, signed, hashlib.sha256).digest()).decode()


def assert_signed(call: dict[str, Any]) -> None:
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    expected = reference_signature(headers["webhook-id"], headers["webhook-timestamp"], call["raw"])
    assert hmac.compare_digest(headers["webhook-signature"], expected)


def webhook_log(edge: Edge, job_id: str) -> dict[str, Any]:
    return httpx.get(f"{edge.url}/v1/generation/job/{job_id}/webhooks", timeout=10).json()


def finish_job(fleet: Fleet, edge: Edge, target: str) -> tuple[str, JobSucceeded]:
    """Queue a job with a webhook and end it as a worker would, without running it."""
    job = post(
        f"{edge.url}/v1/generation/text-to-image", {**SMALL, "async_process": True, "webhook_url": target}
    )
    job_id = job.json()["job_id"]
    done = JobSucceeded(
        job_id=job_id,
        seq=job_seq(1, 2),
        images=[OutputImage(key=f"outputs/2026-01-01/{job_id}-0.png", seed=7)],
        worker_id="test",
        run_ms=1,
    )
    publish_events(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace, done)
    return job_id, done


def test_a_signed_webhook_verifies_and_keeps_the_fooocus_payload(fleet: Fleet) -> None:
    fleet.worker()
    with webhook_listener() as (url, received):
        edge = fleet.edge(**RETRYING)
        job = post(
            f"{edge.url}/v1/generation/text-to-image",
            {**SMALL, "image_seed": 12, "async_process": True, "webhook_url": url},
        ).json()
        done = poll(edge.url, job["job_id"], finished)
        wait_for(lambda: webhook_log(edge, job["job_id"])["state"] == "delivered", what="delivery")
    [call] = received
    assert_signed(call)
    assert call["body"] == {
        "job_id": job["job_id"],
        "job_stage": "SUCCESS",
        "job_result": [{"url": done["job_result"][0]["url"], "seed": "12"}],
    }
    [attempt] = webhook_log(edge, job["job_id"])["attempts"]
    assert (attempt["attempt"], attempt["status_code"], attempt["outcome"]) == (1, 200, "delivered")
    assert attempt["webhook_id"] == call["headers"]["webhook-id"] and attempt["target"] == url


def test_a_failing_receiver_gets_retries_with_growing_delays(fleet: Fleet) -> None:
    with webhook_listener(statuses=[500, 500]) as (url, received):
        edge = fleet.edge(**RETRYING)
        job_id, done = finish_job(fleet, edge, url)
        wait_for(lambda: webhook_log(edge, job_id)["state"] == "delivered", what="third attempt")
    assert len(received) == 3
    first_gap = received[1]["at"] - received[0]["at"]
    second_gap = received[2]["at"] - received[1]["at"]
    assert 1.0 <= first_gap < second_gap and second_gap >= 2.0
    assert {call["headers"]["webhook-id"] for call in received} == {str(done.event_id)}
    assert len({call["raw"] for call in received}) == 1
    for call in received:
        assert_signed(call)
    log = webhook_log(edge, job_id)
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in log["attempts"]] == [
        (1, 500, "retrying"),
        (2, 500, "retrying"),
        (3, 200, "delivered"),
    ]
    assert [a["error"] for a in log["attempts"]] == ["HTTP 500", "HTTP 500", None]


def test_a_slow_receiver_times_out_and_is_retried(fleet: Fleet) -> None:
    with webhook_listener(delays=[2.5]) as (url, received):
        edge = fleet.edge(**RETRYING)
        job_id, _ = finish_job(fleet, edge, url)
        wait_for(lambda: webhook_log(edge, job_id)["state"] == "delivered", what="the retry")
    attempts = webhook_log(edge, job_id)["attempts"]
    assert [(a["error"], a["outcome"]) for a in attempts] == [("timeout", "retrying"), (None, "delivered")]
    assert 900 <= attempts[0]["duration_ms"] < 2500 and len(received) == 2


def test_a_receiver_that_is_down_ends_with_a_failed_delivery(fleet: Fleet) -> None:
    edge = fleet.edge(**RETRYING)
    job_id, _ = finish_job(fleet, edge, f"http://127.0.0.1:{free_port()}/down")
    wait_for(lambda: webhook_log(edge, job_id)["state"] == "failed", what="the last attempt")
    log = webhook_log(edge, job_id)
    assert [(a["status_code"], a["error"], a["outcome"]) for a in log["attempts"]] == [
        (None, "ConnectError", "retrying"),
        (None, "ConnectError", "retrying"),
        (None, "ConnectError", "failed"),
    ]
    assert log["attempts"][-1]["next_attempt_at"] is None


def test_a_scheduled_retry_survives_an_edge_restart(fleet: Fleet) -> None:
    slow_retry = {**RETRYING, "FLEET_WEBHOOK_RETRY_DELAYS_S": "4"}
    with webhook_listener(statuses=[503]) as (url, received):
        first = fleet.edge("edge-1", **slow_retry)
        job_id, _ = finish_job(fleet, first, url)
        wait_for(lambda: webhook_log(first, job_id)["state"] == "retrying", what="the first attempt")
        first.kill(signal.SIGKILL)  # the retry now waits in the broker, not in any edge
        second = fleet.edge("edge-2", **slow_retry)
        wait_for(lambda: webhook_log(second, job_id)["state"] == "delivered", what="the retry")
    assert len(received) == 2 and received[0]["headers"]["webhook-id"] == received[1]["headers"]["webhook-id"]
    attempts = webhook_log(second, job_id)["attempts"]
    assert [(a["status_code"], a["outcome"]) for a in attempts] == [(503, "retrying"), (200, "delivered")]


def test_a_private_webhook_target_is_refused_unless_allowed(fleet: Fleet) -> None:
    edge = fleet.edge()
    refused = post(
        f"{edge.url}/v1/generation/text-to-image",
        {**SMALL, "async_process": True, "webhook_url": "http://169.254.169.254/latest"},
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "webhook_url"], "url_refused")
    assert "FLEET_WEBHOOK_ALLOW" in error["msg"]  # how an operator would allow it
    assert httpx.get(f"{edge.url}/v1/generation/job-queue").json()["last_job_id"] is None
