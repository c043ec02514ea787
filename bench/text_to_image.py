"""Latency and throughput of text-to-image through a running fleet (start one with `make run`).

    .venv/bin/python bench/text_to_image.py --edge http://127.0.0.1:8888 --jobs 20 --size 64*64

Prints: submit latency (HTTP answer of an async submit), end-to-end time per job (submit to SUCCESS,
polled), and jobs per second over the whole batch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge", default="http://127.0.0.1:8888")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--size", default="64*64")
    parser.add_argument("--performance", default="Lightning")
    args = parser.parse_args()
    body = {
        "prompt": "a cat",
        "aspect_ratios_selection": args.size,
        "performance_selection": args.performance,
        "async_process": True,
    }
    client = httpx.Client(base_url=args.edge, timeout=60)
    submitted: dict[str, float] = {}
    submit_ms: list[float] = []
    began = time.monotonic()
    for _ in range(args.jobs):
        start = time.monotonic()
        job = client.post("/v1/generation/text-to-image", json=body).json()
        submit_ms.append((time.monotonic() - start) * 1000)
        submitted[job["job_id"]] = start
    done_s: list[float] = []
    while submitted:
        for job_id, start in list(submitted.items()):
            job = client.get("/v1/generation/query-job", params={"job_id": job_id}).json()
            if job["job_stage"] in ("SUCCESS", "ERROR"):
                done_s.append(time.monotonic() - start)
                del submitted[job_id]
        time.sleep(0.02)
    total = time.monotonic() - began
    print(f"jobs                 {args.jobs} at {args.size}, {args.performance}")
    p50, p95 = statistics.median(submit_ms), percentile(submit_ms, 0.95)
    print(f"submit latency ms    p50 {p50:.1f}  p95 {p95:.1f}")
    print(f"end to end s         p50 {statistics.median(done_s):.2f}  max {max(done_s):.2f}")
    print(f"throughput jobs/s    {args.jobs / total:.2f}")


if __name__ == "__main__":
    main()
