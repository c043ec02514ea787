"""The webhook sender alone: signing, which answers are retried and when, the address rules at
delivery time, and the payload; the receiver is an httpx mock transport."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from contracts import (
    DeliverWebhook,
    GenerationParams,
    JobQueued,
    JobSucceeded,
    JobType,
    OutputImage,
    WebhookAttempted,
    job_seq,
)
from edge import egress, webhooks
from edge.readmodel import ReadModel
from edge.results import ResultRenderer
from edge.settings import EdgeSettings
from edge.webhooks import WebhookSender
from tests.edge.support import sqlite_model

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


class Outbox:
    def __init__(self) -> None:
        self.records: list[WebhookAttempted] = []
        self.scheduled: list[tuple[DeliverWebhook, float]] = []

    async def record(self, event: WebhookAttempted) -> None:
        self.records.append(event)

    async def schedule(self, order: DeliverWebhook, delay_s: float) -> None:
        self.scheduled.append((order, delay_s))


def sender(
    answer: Any, outbox: Outbox, model: ReadModel | None = None, **settings: Any
) -> tuple[WebhookSender, list[httpx.Request]]:
    """`answer(request)` returns a response or raises; every request is kept."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)  # type: ignore[no-any-return]

    config = EdgeSettings(_env_file=None, webhook_retry_delays_s=[5, 30], **settings)  # type: ignore[call-arg]
    renderer = ResultRenderer(None, "http://edge")  # type: ignore[arg-type]
    made = WebhookSender(model or sqlite_model(), renderer, config, outbox, httpx.MockTransport(handle))
    return made, seen


def order(
    attempt: int = 1, target: str = "https://hooks.example/in", trusted: bool = False
) -> DeliverWebhook:
    body = json.dumps({"job_id": "j", "job_stage": "SUCCESS", "job_result": []})
    return DeliverWebhook(
        job_id="j", webhook_id="msg_1", target=target, body=body, attempt=attempt, trusted=trusted
    )


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"hooks.example": ["93.184.216.34"], "inside.example": ["10.0.0.5"]}

    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    monkeypatch.setattr(egress, "resolve", resolve)


def test_an_attempt_is_signed_the_standard_webhooks_way() -> None:
    outbox = Outbox()
    send, seen = sender(lambda r: httpx.Response(200), outbox, webhook_secret=SECRET)
    record = asyncio.run(send.attempt(order()))
    [request] = seen
    stamp = request.headers["webhook-timestamp"]
    signed = b"msg_1." + stamp.encode() + b"." + request.content
    expected = "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == expected
    assert request.headers["webhook-id"] == "msg_1" and request.content == order().body.encode()
    # Sent to the checked address, still naming the host.
    assert (request.url.host, request.headers["host"]) == ("93.184.216.34", "hooks.example")
    assert (record.outcome, record.status_code, record.error) == ("delivered", 200, None)
    assert outbox.records == [record] and outbox.scheduled == []


def test_without_a_secret_there_is_no_signature() -> None:
    send, seen = sender(lambda r: httpx.Response(204), Outbox())
    assert asyncio.run(send.attempt(order())).outcome == "delivered"
    assert "webhook-signature" not in seen[0].headers and seen[0].headers["webhook-id"] == "msg_1"


@pytest.mark.parametrize("secret", ["abc", "whsec_%%%", "whsec_" + base64.b64encode(b"short").decode()])
def test_a_bad_secret_is_refused_at_start(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        EdgeSettings(_env_file=None, webhook_secret=secret)  # type: ignore[call-arg]


def fail(error: type[httpx.HTTPError]) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error("no", request=request)

    return answer


@pytest.mark.parametrize(
    ("answer", "attempt", "outcome", "error", "delay"),
    [
        (lambda r: httpx.Response(500), 1, "retrying", "HTTP 500", 5),
        (lambda r: httpx.Response(429), 2, "retrying", "HTTP 429", 30),
        (lambda r: httpx.Response(503), 3, "failed", "HTTP 503", None),  # the schedule is spent
        (lambda r: httpx.Response(404), 1, "failed", "HTTP 404", None),
        (
            lambda r: httpx.Response(302, headers={"location": "http://10.0.0.1/"}),
            1,
            "failed",
            "HTTP 302",
            None,
        ),
        (fail(httpx.ReadTimeout), 1, "retrying", "timeout", 5),
        (fail(httpx.ConnectError), 2, "retrying", "ConnectError", 30),
        (fail(httpx.RemoteProtocolError), 3, "failed", "RemoteProtocolError", None),
    ],
)
def test_what_is_retried_and_when(
    answer: Any, attempt: int, outcome: str, error: str, delay: float | None
) -> None:
    outbox = Outbox()
    send, seen = sender(answer, outbox)
    before = datetime.now(UTC)
    record = asyncio.run(send.attempt(order(attempt)))
    assert (record.attempt, record.outcome, record.error) == (attempt, outcome, error) and len(seen) == 1
    if delay is None:
        assert outbox.scheduled == [] and record.next_attempt_at is None
    else:
        [(retry, waited)] = outbox.scheduled
        same = {"event_id", "occurred_at"}
        assert waited == delay and retry.model_dump(exclude=same) == order(attempt + 1).model_dump(
            exclude=same
        )
        assert record.next_attempt_at is not None
        assert abs((record.next_attempt_at - before).total_seconds() - delay) < 2


def test_a_private_target_is_refused_at_delivery_unless_it_is_the_operators() -> None:
    outbox = Outbox()
    send, seen = sender(lambda r: httpx.Response(200), outbox)
    refused = asyncio.run(send.attempt(order(target="http://inside.example/hook")))
    assert seen == [] and refused.outcome == "failed" and refused.error is not None
    assert refused.error.startswith("url_refused")
    trusted = asyncio.run(send.attempt(order(target="http://inside.example/hook", trusted=True)))
    assert trusted.outcome == "delivered" and len(seen) == 1


def job_events(webhook_url: str | None) -> tuple[JobQueued, JobSucceeded]:
    queued = JobQueued(
        job_id="j",
        seq=0,
        job_type=JobType.TEXT_TO_IMAGE,
        params=GenerationParams(image_seed=7),
        webhook_url=webhook_url,
    )
    done = JobSucceeded(
        job_id="j",
        seq=job_seq(1, 2),
        images=[OutputImage(key="outputs/2026-01-01/j-0.png", seed=7)],
        worker_id="w",
        run_ms=1,
    )
    return queued, done


def finished_job(model: ReadModel, webhook_url: str | None) -> JobSucceeded:
    queued, done = job_events(webhook_url)
    asyncio.run(model.fold([queued, done]))
    return done


def test_a_webhook_waits_for_a_read_model_still_catching_up_instead_of_dropping_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhooks, "PROJECTION_WAIT_S", 0.05)
    model, outbox = sqlite_model(current=False), Outbox()
    send, seen = sender(lambda r: httpx.Response(200), outbox, model)
    queued, done = job_events("https://hooks.example/in")

    async def scenario() -> WebhookAttempted | None:
        delivery = asyncio.create_task(send(done))
        await asyncio.sleep(0.3)  # well past the wait an edge used to give up after
        assert not delivery.done()
        await model.fold([queued, done], position=41)
        model.current.set()  # the edge read its own start marker back
        return await asyncio.wait_for(delivery, 5)

    record = asyncio.run(scenario())
    assert record is not None and record.outcome == "delivered" and len(seen) == 1


def test_the_first_attempt_posts_the_fooocus_payload_under_the_terminal_events_id() -> None:
    model, outbox = sqlite_model(), Outbox()
    done = finished_job(model, "https://hooks.example/in")
    send, seen = sender(lambda r: httpx.Response(200), outbox, model)
    record = asyncio.run(send(done))
    assert record is not None and record.webhook_id == str(done.event_id)
    assert json.loads(seen[0].content) == {
        "job_id": "j",
        "job_stage": "SUCCESS",
        "job_result": [{"url": "http://edge/files/2026-01-01/j-0.png", "seed": "7"}],
    }


def test_no_target_means_no_attempt_and_the_default_is_the_operators() -> None:
    model, outbox = sqlite_model(), Outbox()
    done = finished_job(model, None)
    send, seen = sender(lambda r: httpx.Response(200), outbox, model)
    assert asyncio.run(send(done)) is None and seen == [] and outbox.records == []
    send, seen = sender(lambda r: httpx.Response(200), outbox, model, webhook_url="http://inside.example/all")
    record = asyncio.run(send(done))
    assert (
        record is not None and record.outcome == "delivered" and record.target == "http://inside.example/all"
    )


def test_a_repeated_terminal_event_starts_its_webhook_once() -> None:
    """A worker may repeat a finished job's terminal event (same `event_id`) from its manifest: two copies
    at once on this edge, and a copy after the first attempt is in the delivery log, post nothing more."""
    model, outbox = sqlite_model(), Outbox()
    done = finished_job(model, "https://hooks.example/in")

    def slow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    send, seen = sender(slow, outbox, model)

    other_edge, seen_there = sender(slow, outbox, model)  # no memory of this edge's: the log decides

    async def scenario() -> list[WebhookAttempted | None]:
        together = await asyncio.gather(send(done), send(done))
        for record in outbox.records:
            await model.fold([record])
        return [*together, await other_edge(done)]

    first, second, later = asyncio.run(scenario())
    assert len(seen) == 1 and seen_there == []
    assert [first is None, second is None, later] == [False, True, None]
