"""`fooocus-fleet worker` runs a worker; `fooocus-fleet models init-tiny` writes the tiny model."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from storage import StorageSettings
from worker.app import create_app
from worker.engine.tiny import write_tiny_checkpoint
from worker.settings import WorkerSettings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"fooocus-fleet {argv[0]}")
    parser.add_argument("--amqp-url")
    parser.add_argument("--namespace")
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--worker-id")
    parser.add_argument("--default-model")
    parser.add_argument("--preset", help="Fooocus model preset (default, realistic, anime, sai, lcm, ...)")
    if argv[0] == "models":
        parser.add_argument("action", choices=["init-tiny"])
    given = {k: v for k, v in vars(parser.parse_args(argv[1:])).items() if v is not None}
    action = given.pop("action", None)
    settings = WorkerSettings(**given)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if action == "init-tiny":
        print(write_tiny_checkpoint(settings.models_dir / "checkpoints"))
        return 0
    asyncio.run(create_app(settings, StorageSettings.from_env()).run())
    return 0
