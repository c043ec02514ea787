"""Crossing process boundaries under faults: restarts, kills, poison messages, webhooks."""

from __future__ import annotations

import asyncio
import json
import signal

import aio_pika
import httpx
import pytest

from contracts.topology import Topology
from tests.fleet import Fleet
from tests.integration.helpers import SMALL, finished, poll, post, webhook_listener

pytestmark = pytest.mark.integration


def test_webhook_fires_once_with_fooocus_payload(fleet: Fleet) -> None:
    fleet.worker()
    with webhook_listener() as (url, received):
        edge = fleet.edge(FLEET_ALLOW_PRIVATE_URLS="1")  # the listener is on loopback
        job = post(
            f"{edge.url}/v1/generation/text-to-image",
            {**SMALL, "image_seed": 5, "async_process": True, "webhook_url": url},
        ).json()
        poll(edge.url, job["job_id"], finished)
        for _ in range(100):
            if received:
                break
            asyncio.run(asyncio.sleep(0.05))
    [call] = received
    body = call["body"]
    assert (body["job_id"], body["job_stage"]) == (job["job_id"], "SUCCESS")
    assert [r["seed"] for r in body["job_result"]] == ["5"]
    assert httpx.get(body["job_result"][0]["url"]).status_code == 200


def test_default_webhook_from_the_flag(fleet: Fleet) -> None:
    fleet.worker()
    with webhook_listener() as (url, received):
        edge = fleet.edge("edge", "--webhook-url", url, FLEET_ALLOW_PRIVATE_URLS="1")
        [item] = post(f"{edge.url}/v1/generation/text-to-image", SMALL).json()
        for _ in range(100):
            if received:
                break
            asyncio.run(asyncio.sleep(0.05))
    assert received and received[0]["body"]["job_result"][0]["url"] == item["url"]


def test_edge_restart_keeps_every_job(fleet: Fleet) -> None:
    fleet.worker()
    # Both edges publish the same base URL, as edges behind one load balancer do.
    first = fleet.edge("edge-1", "--base-url", "http://fleet.test")
    ids = [
        post(f"{first.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()["job_id"]
        for _ in range(2)
    ]
    before = [poll(first.url, job_id, finished) for job_id in ids]
    first.kill(signal.SIGKILL)
    second = fleet.edge("edge-2", "--base-url", "http://fleet.test")
    after = [httpx.get(f"{second.url}/v1/generation/query-job", params={"job_id": i}).json() for i in ids]
    # Step previews travel only on the live exchange: everything else comes back from the log.
    assert after == [{**job, "job_step_preview": None} for job in before]
    assert all(job["job_result"][0]["url"].startswith("http://fleet.test/files/") for job in after)
    assert httpx.get(f"{second.url}/v1/generation/job-queue").json()["finished_size"] == 2


async def _publish_raw(url: str, topology: Topology, body: bytes, message_id: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=topology.work.name,
        )


def test_malformed_job_fails_and_the_worker_lives_on(fleet: Fleet) -> None:
    worker = fleet.worker()
    edge = fleet.edge()
    env = fleet.fleet_env
    poison = json.dumps({"job_id": "poison-1", "params": {"image_number": "many"}}).encode()
    asyncio.run(_publish_raw(env.amqp_url, Topology(env.namespace), poison, "poison-1"))
    asyncio.run(_publish_raw(env.amqp_url, Topology(env.namespace), b"\x00not json", "poison-2"))
    for job_id in ("poison-1", "poison-2"):
        failed = poll(edge.url, job_id, finished)
        assert failed["job_stage"] == "ERROR" and "could not be read" in failed["job_status"]
    [item] = post(f"{edge.url}/v1/generation/text-to-image", SMALL).json()
    assert item["finish_reason"] == "SUCCESS" and worker.alive
