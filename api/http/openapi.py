"""The published OpenAPI 3.1 document: what every operation can answer, exactly.

Routes declare their own statuses (`problem_responses`) and success headers (`headers`); this
module owns the shapes they point at (problem+json, response headers, the bearer scheme) and the
cross-cutting facts no single route knows: every response under /api carries the rate-limit
headers, and every operation there can answer 401, 403, 422, 429, 500 and 503.
The committed `openapi.json` is this document; a test fails when the two drift apart.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from api.http.consistency import TOKEN_LENGTH, TOKEN_PATTERN
from api.http.errors import FIELD_MESSAGE_MAX, FIELD_PATH_MAX, MAX_FIELD_ERRORS
from api.paths import API_PREFIX
from api.problems import BY_STATUS, PROBLEM_BASE, PROBLEM_JSON

BEARER_SCHEME = "bearerAuth"
# Every operation under /api can answer these, whatever its own handler does: the middleware
# (401, 413, 429, 431), the tenant check (403), path and query validation (422) and the
# database (503). The size limits apply to every path, the probes included (PROBE_STATUSES).
COMMON_STATUSES = (401, 403, 413, 422, 429, 431, 500, 503)
PROBE_STATUSES = (413, 431)


def omit_default(schema: dict[str, Any]) -> None:
    """Leave `default` out of a property's schema; its description states it instead.

    Client generators read `default` as "always present" (openapi-typescript makes such a
    property required): true of responses, but it would force clients to send the field, and
    an optional member that does not apply is absent, not `null`.
    """
    schema.pop("default", None)


class FieldError(BaseModel):
    """One reason a request was refused with 422."""

    location: Literal["body", "query", "path", "header", "cookie", "request"] = Field(
        description="Where the offending field is."
    )
    field: str = Field(
        max_length=FIELD_PATH_MAX,
        description="Dotted path of the offending field within its location (may be truncated).",
    )
    message: str = Field(max_length=FIELD_MESSAGE_MAX, description="What is wrong, for people.")
    type: str = Field(
        max_length=64, pattern=r"^[a-z0-9_]+$", description="A machine-readable error code."
    )


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; members not listed here are extensions a client may ignore."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:tasks-api:problem:not-found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "No such task.",
                }
            ]
        }
    )

    type: str = Field(
        max_length=200,
        description=f"A URI identifying the problem type (`{PROBLEM_BASE}<slug>`).",
        json_schema_extra={"format": "uri"},
    )
    title: str = Field(max_length=100, description="The status's short, fixed summary.")
    status: int = Field(ge=400, le=599, json_schema_extra={"format": "int32"})
    detail: str = Field(max_length=1000, description="What went wrong with this request.")
    errors: list[FieldError] = Field(
        default_factory=list,
        max_length=MAX_FIELD_ERRORS,
        description=f"On 422: the offending fields (at most {MAX_FIELD_ERRORS}).",
        json_schema_extra=omit_default,
    )


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "schema": schema}


RATE_LIMIT_HEADERS = ("RateLimit", "RateLimit-Policy")
CORS_HEADER = "Access-Control-Allow-Origin"
REQUEST_ID_HEADER = "X-Request-ID"
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": _header(
        "Strong entity tag of the representation as returned (the task, or this page of the "
        "list): send a task's back in `If-Match`, either in `If-None-Match`.",
        {"type": "string", "pattern": '^"[0-9a-f]{32}"$', "maxLength": 34},
    ),
    "Location": _header(
        "Path of the created task.",
        {"type": "string", "format": "uri-reference", "maxLength": 2048},
    ),
    "Consistency-Token": _header(
        "Where this write committed, as an opaque token: send it back as the "
        "`Consistency-Token` request header of a later list or get to read this write "
        "(from a replica once it has replayed it, else from the primary).",
        {"type": "string", "pattern": TOKEN_PATTERN, "maxLength": TOKEN_LENGTH},
    ),
    "Idempotent-Replayed": _header(
        "`true` when this is the recorded response to an earlier request with the same "
        "`Idempotency-Key` (no new task was created).",
        {"type": "string", "const": "true"},
    ),
    "Access-Control-Allow-Origin": _header(
        "Present when the request's `Origin` is one of the configured `CORS_ORIGINS`.",
        {"type": "string", "pattern": "^(\\*|[A-Za-z][A-Za-z0-9+.-]*://[^/]+)$", "maxLength": 2048},
    ),
    "Link": _header(
        'The next page, as `<url>; rel="next"`; absent on the last page.',
        {"type": "string", "pattern": '^<[^>]+>; rel="next"$', "maxLength": 4096},
    ),
    "Retry-After": _header(
        "Seconds to wait before retrying.",
        {"type": "integer", "format": "int32", "minimum": 0, "maximum": 86400},
    ),
    "WWW-Authenticate": _header(
        "The bearer challenge (RFC 6750), with `error=\"invalid_token\"` when a token was sent.",
        {"type": "string", "pattern": "^Bearer ", "maxLength": 1024},
    ),
    "RateLimit": _header(
        "What is left of the caller's quota (IETF RateLimit header fields): `r` requests, "
        "full again in `t` seconds. Absent when rate limiting is off (`RATE_LIMIT=off`).",
        {"type": "string", "pattern": '^"[^"]+";r=[0-9]+;t=[0-9]+$', "maxLength": 256},
    ),
    "RateLimit-Policy": _header(
        "The caller's quota: `q` requests per `w` seconds, bursts included. "
        "Absent when rate limiting is off (`RATE_LIMIT=off`).",
        {"type": "string", "pattern": '^"[^"]+";q=[0-9]+;w=[0-9]+$', "maxLength": 256},
    ),
    "X-Request-ID": _header(
        "The request's id in the logs: the caller's own `X-Request-ID` when it matches "
        "`[A-Za-z0-9._:-]{1,128}`, otherwise a fresh one.",
        {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$", "maxLength": 128},
    ),
}

_REQUIRED_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}


def header_ref(name: str, *, required: bool) -> dict[str, Any]:
    if required:
        return {**HEADERS[name], "required": True}
    return {"$ref": f"#/components/headers/{name}"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json responses for `statuses`, in the shape FastAPI's `responses=` takes."""
    return {
        status: {
            "description": BY_STATUS[status].description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
            **(
                {"headers": {h: header_ref(h, required=True) for h in _REQUIRED_HEADERS[status]}}
                if status in _REQUIRED_HEADERS
                else {}
            ),
        }
        for status in statuses
    }


def success_headers(*required: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Header declarations for a success response (FastAPI's `responses={200: {...}}`)."""
    return {
        "headers": {
            **{name: header_ref(name, required=True) for name in required},
            **{name: header_ref(name, required=False) for name in optional},
        }
    }


def _add_cross_cutting_headers(document: dict[str, Any]) -> None:
    """Headers the middleware adds: the request id and CORS everywhere, the limiter's under /api.

    The request id is on every answer, a 500 included: RequestObservation renders that itself.
    """
    for path, item in document["paths"].items():
        for operation in item.values():
            for response in operation["responses"].values():
                headers = response.setdefault("headers", {})
                if path.startswith(API_PREFIX):
                    for name in RATE_LIMIT_HEADERS:
                        headers[name] = header_ref(name, required=False)
                headers[REQUEST_ID_HEADER] = header_ref(REQUEST_ID_HEADER, required=True)
                headers[CORS_HEADER] = header_ref(CORS_HEADER, required=False)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` on a parameter means "may be omitted": on the wire it is never null."""
    variants = schema.get("anyOf", [])
    kept = [v for v in variants if v.get("type") != "null"]
    if len(kept) == 1 and len(variants) == 2:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**kept[0], **rest}
    return schema


def _parameters_never_null(document: dict[str, Any]) -> None:
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])


def _path_parameters_first(document: dict[str, Any]) -> None:
    """Path parameters in the order the path names them, then the rest as declared.

    The caller's `user_id` is declared once, by the dependency every tenant route shares
    (api/deps.py), which FastAPI lists after the route's own parameters.
    """
    for path, item in document["paths"].items():
        for operation in item.values():
            parameters = operation.get("parameters")
            if not parameters:
                continue

            def position(parameter: dict[str, Any], template: str = path) -> int:
                if parameter["in"] != "path":
                    return len(template)
                return template.index("{" + parameter["name"] + "}")

            parameters.sort(key=position)


def _referenced_headers(document: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(document["paths"])
    return {
        name: copy.deepcopy(value)
        for name, value in HEADERS.items()
        if f'"#/components/headers/{name}"' in text
    }


def _problem_schemas() -> dict[str, Any]:
    schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs")
    return {"ProblemDetails": schema, **definitions}


# What holds for every operation, where a client reads first.
CONVENTIONS = """
Conventions that hold everywhere:

- Authenticate with `Authorization: Bearer <JWT>`; the token's identity claim is the `user_id`
  of every path. A path naming another user is 403; another user's task is the same 404 as a
  missing one.
- Every response under `/api` carries `RateLimit` and `RateLimit-Policy` (unless rate limiting
  is off); over the budget the answer is 429 with `Retry-After`.
- A method a path does not serve is 405 with `Allow`. Responses carry `X-Request-ID` (yours
  when it matches `[A-Za-z0-9._:-]{1,128}`, else a new one), the id the server logs.
- Every `GET` also answers `HEAD` (the same status and headers, no body).
- Conditional requests follow RFC 9110; a field sent several times is one list. A read with
  `If-None-Match` naming the current `ETag` (weak comparison, or `*`) is 304 with that `ETag`.
  Writes to one task honour `If-Match` (412 when it names no current `ETag`) and
  `If-None-Match` (412 when it names the task's current `ETag`, or is `*`). A create may carry
  an `Idempotency-Key`: a retry with the same key and body returns the first response; the same
  key with another body is 422.
- Every successful write returns a `Consistency-Token`; send it back on a list or get to be
  sure to read that write (reads may otherwise be served by a read replica slightly behind).
  A token this service did not issue is 400.
"""

TAGS = [
    {"name": "tasks", "description": "The caller's own tasks; nobody else's are reachable."},
    {"name": "health", "description": "Probes for load balancers and orchestrators."},
]
# The document is served by each deployment from its own origin, so the one server is relative.
SERVERS = [
    {
        "url": "/",
        "description": "This deployment (local, staging or production), the document's origin.",
        "x-internal": False,
    }
]


def build_document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version="3.1.0",
        summary=app.summary,
        description=(app.description or "") + CONVENTIONS,
        routes=app.routes,
        tags=TAGS,
        servers=SERVERS,
    )
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(_problem_schemas())
    components["securitySchemes"] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT from the sign-in service, verified per RFC 8725 (RFC8725): "
            "signature, an allow-listed algorithm, `exp`/`nbf` and, when configured, `iss` and "
            "`aud`. Its identity claim (default `sub`) is the `user_id` of every path.",
        }
    }
    document["security"] = [{BEARER_SCHEME: []}]
    _parameters_never_null(document)
    _path_parameters_first(document)
    _add_cross_cutting_headers(document)
    components["headers"] = _referenced_headers(document)
    return document


def install(app: FastAPI) -> None:
    """Serve `build_document` at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def dumps(document: dict[str, Any]) -> str:
    """The committed file's exact text (`tasks-api openapi > openapi.json`)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
