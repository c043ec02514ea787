"""Fooocus-API clients over a real connection: a sync call longer than Sanic's response timeout waits
for its job as the edge's own sync timeout says, a client that hangs up leaves its job to run, and sizes
written `WxH` are accepted."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fleet import Fleet
from tests.integration.helpers import finished, poll, read_log, terminal_events

pytestmark = pytest.mark.integration

T2I = "/v1/generation/text-to-image"
SMALL = {"prompt": "a cat", "performance_selection": "Lightning", "aspect_ratios_selection": "64*64"}


def test_a_sync_call_waits_past_sanics_response_timeout(fleet: Fleet) -> None:
    # Sanic's response timeout is 60 s by default; set to 3 s here through Sanic's own environment
    # variable, so that the call outlasts it in seconds: the edge must put its own in its place.
    # No worker: the job waits in the queue, so the call lasts exactly the edge's sync timeout.
    edge = fleet.edge(FLEET_SYNC_TIMEOUT_S="8", SANIC_RESPONSE_TIMEOUT="3")
    began = time.monotonic()
    answer = httpx.post(f"{edge.url}{T2I}", json=SMALL, timeout=120)
    waited = time.monotonic() - began
    # Sanic's own cut would be a 503 `{"detail": "Response Timeout"}` after 3 s.
    assert answer.status_code == 504, answer.text
    assert answer.json()["job_stage"] == "WAITING" and waited >= 8
    job_id = answer.headers["x-fleet-job-id"]
    still = httpx.get(f"{edge.url}/v1/generation/query-job", params={"job_id": job_id}).json()
    assert still["job_stage"] == "WAITING"  # the job was neither cancelled nor lost


@pytest.mark.parametrize("size", ["1024x1024", "1024×1024"])
def test_a_size_written_with_an_x_is_accepted(fleet: Fleet, size: str) -> None:
    edge = fleet.edge()
    body = {**SMALL, "aspect_ratios_selection": size, "async_process": True}
    answer = httpx.post(f"{edge.url}{T2I}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["job_stage"] == "WAITING"


def test_a_client_that_hangs_up_neither_cancels_nor_loses_its_job(fleet: Fleet) -> None:
    edge = fleet.edge()
    streaming = {"accept": "image/png"}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        httpx.post(f"{edge.url}{T2I}", json=SMALL, headers=streaming, timeout=2)
    job_id = httpx.get(f"{edge.url}/v1/generation/job-queue").json()["last_job_id"]
    fleet.worker()  # only now can the job run: it outlived its caller
    done = poll(edge.url, job_id, finished, timeout=120)
    assert done["job_stage"] == "SUCCESS" and len(done["job_result"]) == 1
    log = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    assert [e.type for e in terminal_events(log, job_id)] == ["job.succeeded"]
