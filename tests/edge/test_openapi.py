"""The OpenAPI document is valid for the version it declares, and documents every route: request bodies,
query parameters and answers, one operation id each (the old inpaint spelling its own, deprecated)."""

from __future__ import annotations

import functools
from typing import Any

from openapi_spec_validator import OpenAPIV30SpecValidator

from tests.edge.test_idempotency import run


@functools.cache
def document() -> dict[str, Any]:
    async def scenario(client: Any) -> Any:
        return await client.get("/docs/openapi.json")

    answer, _ = run(scenario)
    return answer[1].json  # type: ignore[no-any-return]


def test_the_document_is_valid_openapi_3_0() -> None:
    spec = document()
    assert spec["openapi"].startswith("3.0")
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in OpenAPIV30SpecValidator(spec).iter_errors()]
    assert errors == []


def test_every_generation_route_documents_its_body_and_answers() -> None:
    generation = [
        (path, op)
        for path, item in document()["paths"].items()
        for op in item.values()
        if "/generation/" in path
    ]
    submits = [
        (path, op) for path, op in generation if path.split("/")[-1] not in ("stop",) and "requestBody" in op
    ]
    assert (
        len(submits) == 12
    )  # 5 image routes × 2 versions, text-to-image, text-to-image-with-ip (+ 2 aliases)
    text = document()["paths"]["/v1/generation/text-to-image"]["post"]
    assert (
        text["requestBody"]["content"]["application/json"]["schema"]["properties"]["prompt"]["type"]
        == "string"
    )
    assert {"200", "422", "409", "504"} <= set(text["responses"])


def test_the_old_inpaint_spelling_is_its_own_deprecated_operation() -> None:
    for version in ("v1", "v2"):
        old = document()["paths"][f"/{version}/generation/image-inpait-outpaint"]["post"]
        new = document()["paths"][f"/{version}/generation/image-inpaint-outpaint"]["post"]
        assert old["deprecated"] is True and not new.get("deprecated")
        assert old["operationId"] != new["operationId"]
        assert old["requestBody"] == new["requestBody"]


def test_reads_document_their_parameters_and_answers() -> None:
    def parameters(path: str, method: str = "get") -> dict[str, Any]:
        return {p["name"]: p for p in document()["paths"][path][method].get("parameters", [])}

    query = parameters("/v1/generation/query-job")
    assert (
        query["job_id"]["required"] is True and query["require_step_preview"]["schema"]["type"] == "boolean"
    )
    history = parameters("/v1/generation/job-history")
    assert list(history) == ["job_id", "page", "page_size", "delete"]
    assert history["page_size"]["schema"]["maximum"] == 1000 and history["job_id"]["schema"]["nullable"]
    for path, method, field in (
        ("/v1/generation/query-job", "get", "job_stage"),
        ("/v1/generation/job-queue", "get", "running_size"),
        ("/v1/generation/stop", "post", "msg"),
    ):
        schema = document()["paths"][path][method]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        assert field in schema["properties"], path
    assert document()["paths"]["/ping"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "enum"
    ] == ["pong"]
    assert "503" in document()["paths"]["/ready"]["get"]["responses"]
