"""The topology's new parts: the cancels stream and the webhook delay queues."""

from __future__ import annotations

from contracts.topology import CANCEL_REQUESTED, Topology


def test_each_delay_has_its_own_queue_that_expires_into_the_retry_exchange() -> None:
    topology = Topology("ns")
    short, long = topology.webhook_delay(1.5), topology.webhook_delay(120)
    assert (short.name, long.name) == ("ns.webhooks.delay.1500ms", "ns.webhooks.delay.120000ms")
    args = long.arguments or {}
    assert args["x-message-ttl"] == 120_000 and args["x-dead-letter-exchange"] == "ns.webhooks.retry"
    # Idle expiry comes well after every message in it has left.
    assert args["x-expires"] > 2 * args["x-message-ttl"]


def test_the_cancels_stream_is_part_of_the_namespace() -> None:
    topology = Topology("ns")
    assert topology.cancels.name == "ns.cancels" and topology.cancels.routing_key == CANCEL_REQUESTED
    assert "ns.cancels" in topology.queue_names()
    assert "ns.webhooks.retry" in topology.exchange_names()


def test_a_warm_queue_per_checkpoint_expires_its_jobs_into_the_shared_queue() -> None:
    topology = Topology("ns", affinity_wait_s=2.5)
    warm = topology.warm("model.safetensors")
    assert warm is not topology.warm("other") and warm.name != topology.warm("other").name
    assert warm.name == topology.warm("model").name  # a file name with or without its suffix
    args = warm.arguments or {}
    assert args["x-message-ttl"] == 2500 and args["x-dead-letter-exchange"] == "ns.jobs.any"
    assert args["x-dead-letter-strategy"] == "at-least-once" and args["x-overflow"] == "reject-publish"
    assert args["x-expires"] > args["x-message-ttl"]
    # The jobs exchange matches the header a queued job carries; what no warm queue takes goes to any worker.
    assert warm.bind_arguments == {"x-match": "all", **Topology.job_headers("model.safetensors")}
    assert (topology.jobs.arguments or {})["alternate-exchange"] == topology.jobs_any.name
    assert {"ns.jobs", "ns.jobs.any"} <= set(topology.exchange_names())
