"""The edge's read model at scale: time to ready, memory and read latency with N finished jobs in the log.

    .venv/bin/python -m bench.read_model --jobs 10000 100000          # add 1000000 for a day of a big fleet
    .venv/bin/python -m bench.read_model --jobs 2000 --read-model-url postgresql://postgres@127.0.0.1/bench
    .venv/bin/python -m bench.read_model --jobs 1000000 --prefill      # warm restart on 1M jobs, quickly

For each N it publishes N synthetic finished jobs (queued, started, succeeded: 3 events each) into a fresh
namespace's log, then starts `fooocus-fleet edge` on it: cold (an empty read model, so it folds the
whole log), warm (a restart on the read model the first run left) and, on SQLite, seeded (a new edge on
a new file, which starts from a snapshot of the first run's read model in S3). Each row: seconds to ready
(`/ready` answers 200, process start included), fold rate when cold (events over the edge's own
catch-up time), the edge's RSS, `query-job` and `job-history` latency (p50/p99 of 300 calls) and submit
latency (p50/p99 of 50 async submits). Needs RabbitMQ (`make services` starts it); it starts its own S3
server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import httpx

from contracts.topology import Topology
from devservices.s3 import start_weed
from edge.readmodel import ReadModel, snapshots
from storage import ObjectStore, StorageSettings, read_model_key
from tests.conftest import _delete_namespace
from tests.edge.readmodel.events import finished_job

ROOT = Path(__file__).resolve().parents[1]
CONFIRM_WINDOW = 2000  # publishes in flight before waiting for their confirms
PREFILL_BATCH = 5000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def publish_finished_jobs(amqp_url: str, topology: Topology, count: int) -> list[str]:
    """N finished jobs straight into the log (the log queue only: no worker should take them)."""
    connection = await aio_pika.connect(amqp_url)
    job_ids = [str(uuid.uuid4()) for _ in range(count)]
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        arguments = topology.log.arguments
        await channel.declare_queue(topology.log.name, durable=True, arguments=arguments)
        pending: list[asyncio.Future[object]] = []
        for job_id in job_ids:
            for event in finished_job(job_id):
                message = aio_pika.Message(event.model_dump_json().encode(), delivery_mode=2)
                pending.append(
                    asyncio.ensure_future(channel.default_exchange.publish(message, topology.log.name))
                )
            if len(pending) >= CONFIRM_WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    return job_ids


async def prefill(url: str, topology: Topology, count: int) -> list[str]:
    """N finished jobs folded into the read model directly, as if an edge had folded them: the warm
    restart at a size whose log would take long to publish (its log holds none of them)."""
    model = await ReadModel.open(url, topology.log.name, "bench-prefill")
    job_ids = [str(uuid.uuid4()) for _ in range(count)]
    for start in range(0, count, PREFILL_BATCH):
        batch = job_ids[start : start + PREFILL_BATCH]
        await model.fold([event for job_id in batch for event in finished_job(job_id)], position=-1)
    await model.close()
    return job_ids


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class EdgeRun:
    """One `fooocus-fleet edge` process on the bench namespace."""

    def __init__(self, env: dict[str, str], port: int, log: Path, legacy: bool = False) -> None:
        self.env, self.port, self.log = env, port, log
        # An edge from before /ready served only once caught up: any answer then means ready.
        self.legacy = legacy
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> float:
        """Seconds from spawn to `/ready` (caught up with the log)."""
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fleet_cli", "edge", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        poll = httpx.Client(base_url=self.url, timeout=1)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the edge exited; see {self.log}")
            try:
                answer = poll.get("/ready").status_code
                if answer == 200 or (answer == 404 and self.legacy):
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def caught_up(log: Path) -> float:
    """The edge's own figure for its last catch-up: from subscribing to the log to its start marker."""
    found = re.findall(r"caught up with the log in ([0-9.]+) s", log.read_text(errors="replace"))
    return float(found[-1]) if found else float("nan")


def latencies(client: httpx.Client, calls: list[tuple[str, str, dict[str, object]]]) -> tuple[float, float]:
    """p50 and p99 in ms of each call, made one after another."""
    spent = []
    for method, path, options in calls:
        began = time.perf_counter()
        client.request(method, path, **options).raise_for_status()  # type: ignore[arg-type]
        spent.append((time.perf_counter() - began) * 1000)
    return statistics.median(spent), percentile(spent, 0.99)


def measure(edge: EdgeRun, job_ids: list[str], submits: int) -> dict[str, str]:
    client = httpx.Client(base_url=edge.url, timeout=60)
    picks = random.sample(job_ids, min(300, len(job_ids)))
    query = latencies(client, [("GET", "/v1/generation/query-job", {"params": {"job_id": j}}) for j in picks])
    pages = [random.randrange(0, max(1, len(job_ids) // 20)) for _ in range(300)]
    history = latencies(
        client,
        [("GET", "/v1/generation/job-history", {"params": {"page": p, "page_size": 20}}) for p in pages],
    )
    body = {"prompt": "bench", "async_process": True, "aspect_ratios_selection": "64*64"}
    submit = latencies(client, [("POST", "/v1/generation/text-to-image", {"json": body})] * submits)
    return {
        "rss": f"{rss_mib(edge.proc.pid):.0f} MiB",
        "query-job": f"{query[0]:.1f} / {query[1]:.1f} ms",
        "job-history": f"{history[0]:.1f} / {history[1]:.1f} ms",
        "submit": f"{submit[0]:.1f} / {submit[1]:.1f} ms",
    }


async def snapshot(s3_endpoint: str, read_model: str, topology: Topology) -> None:
    """What an edge uploads every FLEET_READ_MODEL_SNAPSHOT_S, taken now: the seeded run starts from it."""
    store = ObjectStore(
        StorageSettings(endpoint=s3_endpoint, bucket="bench", access_key="any", secret_key="any")
    )
    began = time.monotonic()
    await snapshots.take(store, read_model, topology.log.name)
    size = (await store.stat(read_model_key(topology.log.name))).size
    print(f"# snapshot of the read model: {size / 2**20:.0f} MiB, taken in {time.monotonic() - began:.1f} s")


def bench(count: int, args: argparse.Namespace, s3_endpoint: str, scratch: Path) -> list[str]:
    topology = Topology(f"bench-rm-{uuid.uuid4().hex[:8]}")
    read_model = args.read_model_url or f"sqlite:///{scratch / f'{topology.namespace}.db'}"
    began = time.monotonic()
    if args.prefill:
        job_ids = asyncio.run(prefill(read_model, topology, count))
        print(f"# {count} jobs folded straight into the read model in {time.monotonic() - began:.1f} s")
    else:
        job_ids = asyncio.run(publish_finished_jobs(args.amqp_url, topology, count))
        print(
            f"# {count} jobs ({3 * count} events) published in {time.monotonic() - began:.1f} s", flush=True
        )
    env = {
        **os.environ,
        "FLEET_AMQP_URL": args.amqp_url,
        "FLEET_NAMESPACE": topology.namespace,
        "FLEET_S3_ENDPOINT": s3_endpoint,
        "FLEET_S3_BUCKET": "bench",
        "FLEET_S3_ACCESS_KEY": "any",
        "FLEET_S3_SECRET_KEY": "any",
        "FLEET_READ_MODEL_URL": read_model,
        "FLEET_QUEUE_SIZE": "100000",
    }
    rows = []
    runs = ["warm"] if args.prefill else ["cold", "warm"]
    if snapshots.sqlite_file(read_model) is not None:
        runs.append("seeded")
    try:
        for run in runs:
            if run == "seeded":
                seeded = f"sqlite:///{scratch / f'{topology.namespace}-seeded.db'}"
                asyncio.run(snapshot(s3_endpoint, read_model, topology))
                env = {**env, "FLEET_READ_MODEL_URL": seeded}
            edge = EdgeRun(env, args.port, scratch / f"{topology.namespace}.log", args.legacy)
            ready = edge.start()
            try:
                figures = measure(edge, job_ids, args.submits)
            finally:
                edge.stop()
            rate = f"{3 * count / caught_up(edge.log):,.0f}" if run == "cold" else ""
            cells = [f"{count:,}", run, f"{ready:.1f} s", rate, *figures.values()]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    finally:
        asyncio.run(_delete_namespace(args.amqp_url, topology))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--read-model-url", help="default: a fresh SQLite file per N")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--submits", type=int, default=50)
    parser.add_argument("--legacy", action="store_true", help="the edge has no /ready (older versions)")
    parser.add_argument(
        "--prefill", action="store_true", help="fold the jobs into the read model directly; warm run only"
    )
    args = parser.parse_args()
    header = (
        "| jobs | start | ready | events/s folded | RSS | query-job p50 / p99 | job-history p50 / p99"
        " | submit p50 / p99 |"
    )
    with tempfile.TemporaryDirectory(prefix="bench-read-model-") as folder:
        scratch = Path(folder)
        with start_weed(scratch / "weed") as s3:
            print(header + "\n|---|---|---|---|---|---|---|---|", flush=True)
            for count in args.jobs:
                bench(count, args, s3.endpoint, scratch)


if __name__ == "__main__":
    main()
