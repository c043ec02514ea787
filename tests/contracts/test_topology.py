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
