"""The published document: committed, printed by the CLI, served, and complete for clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from api.http.openapi import COMMON_STATUSES, dumps
from cli.main import main

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(COMMITTED.read_text())
    return loaded


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_served_document_is_the_committed_openapi_json(
    client: TestClient, document: dict[str, Any]
) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == document, "openapi.json drifted: run `make openapi` and commit it"


def test_cli_prints_the_committed_file_byte_for_byte(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == COMMITTED.read_text()


def test_committed_file_is_in_canonical_form(document: dict[str, Any]) -> None:
    assert dumps(document) == COMMITTED.read_text()


def test_docs_page_is_served(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


def test_document_is_openapi_3_1_with_a_bearer_jwt_scheme(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearerAuth": schemes["bearerAuth"]}
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["bearerAuth"]["bearerFormat"] == "JWT"
    assert document["security"] == [{"bearerAuth": []}]


def test_metrics_is_not_part_of_the_contract(document: dict[str, Any]) -> None:
    assert "/metrics" not in document["paths"]


def test_every_operation_has_id_summary_description_and_tag(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for key in ("operationId", "summary", "description", "tags"):
            assert operation.get(key), f"{method.upper()} {path} lacks {key}"


def test_every_api_operation_declares_the_statuses_any_request_can_get(
    document: dict[str, Any],
) -> None:
    for path, method, operation in _operations(document):
        if path.startswith("/api/"):
            declared = set(operation["responses"])
            missing = {str(s) for s in COMMON_STATUSES} - declared
            assert not missing, f"{method.upper()} {path} does not declare {missing}"


def test_every_error_response_is_problem_json(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (
                    f"{method.upper()} {path} {status}"
                )


def test_operations_that_take_a_body_declare_400_413_and_415(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(operation["responses"]), f"{method} {path}"


def test_request_bodies_refuse_unknown_fields(document: dict[str, Any]) -> None:
    for name in ("TaskCreate", "TaskReplace", "TaskPatch"):
        assert document["components"]["schemas"][name]["additionalProperties"] is False


def test_defaulted_request_fields_are_not_required(document: dict[str, Any]) -> None:
    create = document["components"]["schemas"]["TaskCreate"]
    assert create["required"] == ["title"]
    assert "default" not in create["properties"]["completed"]


def test_create_links_to_every_operation_on_the_created_task(document: dict[str, Any]) -> None:
    created = document["paths"]["/api/{user_id}/tasks"]["post"]["responses"]["201"]
    targets = {link["operationId"] for link in created["links"].values()}
    assert targets == {"getTask", "replaceTask", "updateTask", "toggleTaskCompleted", "deleteTask"}


def _examples(node: Any) -> list[tuple[dict[str, Any], Any]]:
    """(schema, example) pairs for every `examples` list on a schema in the document."""
    found: list[tuple[dict[str, Any], Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list) and ("type" in node or "properties" in node):
            found.extend((node, example) for example in node["examples"])
        for value in node.values():
            found.extend(_examples(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_examples(value))
    return found


def test_every_example_validates_against_its_schema(document: dict[str, Any]) -> None:
    pairs = _examples(document)
    assert len(pairs) >= 5
    for schema, example in pairs:
        standalone = {**schema, "components": document["components"]}
        validator = jsonschema_rs.Draft202012Validator(standalone, validate_formats=True)
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, (example, errors)
