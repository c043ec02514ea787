"""`fooocus-fleet edge`: serve the REST API, with Fooocus-API's flags."""

from __future__ import annotations

import argparse
import logging

from sanic import Sanic
from sanic.worker.loader import AppLoader

from edge.app import create_app
from edge.settings import EdgeSettings
from storage import StorageSettings


def parse(argv: list[str]) -> EdgeSettings:
    parser = argparse.ArgumentParser(prog="fooocus-fleet edge")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--base-url")
    parser.add_argument("--queue-size", type=int)
    parser.add_argument("--queue-history", type=int)
    parser.add_argument("--history-days", type=float, help="drop finished jobs older than this (0: never)")
    parser.add_argument("--read-model-url", help="sqlite:///path or postgresql://… (edges sharing one)")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", help="`whsec_<base64>`: sign webhooks (Standard Webhooks)")
    parser.add_argument("--webhook-timeout", type=float, dest="webhook_timeout_s")
    parser.add_argument(
        "--webhook-retry-delays", dest="webhook_retry_delays_s", help="seconds before each retry: 5,30,120"
    )
    parser.add_argument(
        "--webhook-allow", help="inner networks and host names webhooks may reach: 10.0.0.0/8,hooks.internal"
    )
    parser.add_argument("--apikey")
    parser.add_argument("--amqp-url")
    parser.add_argument("--namespace")
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    return EdgeSettings(**given)


def main(argv: list[str]) -> int:
    settings = parse(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loader = AppLoader(factory=lambda: create_app(settings, StorageSettings.from_env()))
    app: Sanic = loader.load()
    app.prepare(host=settings.host, port=settings.port, single_process=True, access_log=False)
    Sanic.serve_single(primary=app)
    return 0
