"""What deploy/kubernetes promises: every manifest the kustomization lists parses; the settings it sets
are ones the processes read; the probes are edge routes; workers ask for a GPU and outlast their stop
grace; KEDA scales the worker Deployment on exactly the queues jobs wait in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from contracts.topology import Topology
from edge.settings import EdgeSettings
from worker.settings import WorkerSettings

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# Read by storage (`StorageSettings.from_env`), not a pydantic settings class.
STORAGE_VARIABLES = {"FLEET_S3_ENDPOINT", "FLEET_S3_BUCKET", "FLEET_S3_ACCESS_KEY", "FLEET_S3_SECRET_KEY"}


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    found = {}
    for name in listed:
        for document in yaml.safe_load_all((KUBERNETES / name).read_text()):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_the_configuration_sets_only_what_the_processes_read() -> None:
    data = manifests()[("ConfigMap", "fleet")]["data"]
    known = {f"FLEET_{name.upper()}" for name in (*WorkerSettings.model_fields, *EdgeSettings.model_fields)}
    assert set(data) <= known | STORAGE_VARIABLES, set(data) - known - STORAGE_VARIABLES
    WorkerSettings(_env_file=None, **{k.removeprefix("FLEET_").lower(): v for k, v in data.items()})  # type: ignore[call-arg]


def test_edges_probe_their_own_routes_and_workers_ask_for_a_gpu() -> None:
    found = manifests()
    edge = container(found[("Deployment", "fleet-edge")])
    assert (edge["readinessProbe"]["httpGet"]["path"], edge["livenessProbe"]["httpGet"]["path"]) == (
        "/ready",
        "/ping",
    )
    assert found[("Service", "fleet-edge")]["spec"]["ports"][0]["port"] == 8888
    worker = found[("Deployment", "fleet-worker")]
    assert container(worker)["resources"]["limits"]["nvidia.com/gpu"] == 1
    grace = float(found[("ConfigMap", "fleet")]["data"]["FLEET_STOP_GRACE_S"])
    # Kubernetes kills at the end of its grace; the worker must have finished or handed its job back.
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= grace + 30


def test_keda_scales_the_workers_on_the_queues_jobs_wait_in() -> None:
    found = manifests()
    scaled = found[("ScaledObject", "fleet-worker")]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "fleet-worker"
    [trigger] = scaled["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "rabbitmq" and meta["mode"] == "QueueLength"
    assert meta["useRegex"] == "true" and meta["operation"] == "sum" and meta["protocol"] == "http"
    waiting = re.compile(meta["queueName"])
    topology = Topology(found[("ConfigMap", "fleet")]["data"]["FLEET_NAMESPACE"])
    assert waiting.match(topology.work.name) and waiting.match(topology.warm("juggernautXL").name)
    for other in (topology.dead.name, topology.tools.name, topology.log.name, topology.webhooks.name):
        assert not waiting.match(other), other
