"""Schemathesis hooks for our runs: the tenant checks no generic fuzzer knows, and one client rule.

Loaded by `tests/contract/fuzzing.py` (config `hooks = ...`). The run's owner and peer come from
the environment it sets: FUZZ_OWNER_USER / FUZZ_OWNER_TOKEN (the identity whose path is
fuzzed) and FUZZ_PEER_USER / FUZZ_PEER_TOKEN (the second user).

Checks (each fails the run):
- `foreign_task_is_a_missing_task`: whenever the owner succeeds on one of its tasks, the peer
  sends the same request for that task id on its own path and must get exactly the 404 a
  missing task gets; and when that request was a write, the owner's task must be unchanged.
- `peer_never_lists_owner_tasks`: whenever the owner lists tasks, no listed id appears in the
  peer's list with the same query.
- `precondition_failed_only_with_if_match`: 412 is allowed to the operations that take
  If-Match (one of fuzzing.py's two exclusion lists), so make sure it never comes without a
  precondition (If-Match, or If-None-Match, which those operations take too).
- `bad_request_only_with_consistency_token`: 400 is allowed to list and get from positive data
  (the other exclusion list) for a Consistency-Token the service did not issue; make sure no
  other 400 hides behind it.

Client rule (`before_call`): an Idempotency-Key names one request and its retries, sent before
the client acts on the answer. The fuzzer breaks that rule all the time (its keys come from a
small pattern space, and it replays whole cases while shrinking), and the server's answers to
that are right but not what a schema can describe: 422 for a key reused with another body, and
the recorded 201 of a task deleted since. So every schema-valid key is made unique with a
suffix; a key that breaks the pattern is sent as generated, to be refused.

Unless FUZZ_WORKERS is 1, `foreign_task_is_a_missing_task` skips its "owner's task unchanged"
part: other workers change the owner's tasks at the same time.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import uuid
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
import schemathesis
from schemathesis.core import NotSet

from db.models import IDEMPOTENCY_KEY_PATTERN

_TASK_OPERATIONS = {
    "getTask",
    "replaceTask",
    "updateTask",
    "toggleTaskCompleted",
    "deleteTask",
}
_WRITES = _TASK_OPERATIONS - {"getTask", "deleteTask"}
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_sent_keys = itertools.count(1)


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} must be set for tests/contract/schemathesis_hooks.py")
    return value


def _owner() -> tuple[str, str]:
    return _env("FUZZ_OWNER_USER"), _env("FUZZ_OWNER_TOKEN")


def _peer() -> tuple[str, str]:
    return _env("FUZZ_PEER_USER"), _env("FUZZ_PEER_TOKEN")


def _operation_id(case: schemathesis.Case[Any]) -> str | None:
    value = case.operation.definition.raw.get("operationId")
    return value if isinstance(value, str) else None


def _url(response: schemathesis.Response) -> str:
    url = response.request.url
    assert isinstance(url, str)
    return url


def _origin(response: schemathesis.Response) -> str:
    parts = urlsplit(_url(response))
    return f"{parts.scheme}://{parts.netloc}"


def _is_owner_request(case: schemathesis.Case[Any]) -> bool:
    owner, _ = _owner()
    return (case.path_parameters or {}).get("user_id") == owner


def _client(response: schemathesis.Response, token: str) -> httpx2.Client:
    return httpx2.Client(
        base_url=_origin(response), headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    )


def _body_bytes(case: schemathesis.Case[Any]) -> bytes | None:
    if case.body is None or isinstance(case.body, NotSet):
        return None
    return json.dumps(case.body).encode()


def _comparable_problem(response: httpx2.Response) -> tuple[int, str, Any]:
    return response.status_code, response.headers.get("content-type", ""), response.json()


def key_for(key: str) -> str:
    """A valid generated key made unique (a suffix keeps what was generated); others untouched."""
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        return key  # a negative case: the server must refuse it as it is
    return f"{key[:240]}~{next(_sent_keys)}"


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case[Any], kwargs: dict[str, Any]) -> None:
    headers: MutableMapping[str, Any] | None = case.headers
    key = headers.get("Idempotency-Key") if headers else None
    if headers and isinstance(key, str) and _operation_id(case) == "createTask":
        headers["Idempotency-Key"] = key_for(key)


@schemathesis.check
def foreign_task_is_a_missing_task(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    operation = _operation_id(case)
    if operation not in _TASK_OPERATIONS or not 200 <= response.status_code < 300:
        return None
    if not _is_owner_request(case):
        return None
    task_id = str(case.path_parameters["task_id"])
    owner, owner_token = _owner()
    peer, peer_token = _peer()
    suffix = urlsplit(_url(response)).path.split(f"/tasks/{task_id}", 1)[1]
    headers: dict[str, str] = {
        k: str(v)
        for k, v in (case.headers or {}).items()
        if k.lower() not in {"authorization", "content-length"}
    }
    body = _body_bytes(case)
    if body is not None:
        headers["Content-Type"] = "application/json"
    with _client(response, peer_token) as as_peer:
        peer_path = f"/api/{quote(peer, safe='')}/tasks"
        foreign = as_peer.request(
            case.method, f"{peer_path}/{task_id}{suffix}", headers=headers, content=body
        )
        missing = as_peer.request(
            case.method, f"{peer_path}/{uuid.uuid4()}{suffix}", headers=headers, content=body
        )
    assert foreign.status_code == 404, (
        f"{peer} answered {foreign.status_code} on {owner}'s task {task_id} "
        f"({case.method} {suffix or '/'}), not 404"
    )
    assert _comparable_problem(foreign) == _comparable_problem(missing), (
        f"{peer}'s 404 for {owner}'s task differs from the 404 for a missing task: "
        f"{foreign.text!r} vs {missing.text!r}"
    )
    if operation in _WRITES and os.environ.get("FUZZ_WORKERS") == "1":
        with _client(response, owner_token) as as_owner:
            after = as_owner.get(f"/api/{quote(owner, safe='')}/tasks/{task_id}")
        assert after.status_code == 200, f"{owner}'s task answered {after.status_code} after"
        assert after.headers["ETag"] == response.headers["etag"][0], (
            f"{peer}'s {case.method} changed {owner}'s task {task_id}"
        )
    return True


@schemathesis.check
def peer_never_lists_owner_tasks(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    if _operation_id(case) != "listTasks" or response.status_code != 200:
        return None
    if not _is_owner_request(case):
        return None
    owned = {task["id"] for task in response.json()}
    if not owned:
        return None
    peer, peer_token = _peer()
    with _client(response, peer_token) as as_peer:
        listed = as_peer.get(
            f"/api/{quote(peer, safe='')}/tasks", params=case.query or {}
        )
    if listed.status_code != 200:
        return None
    leaked = owned & {task["id"] for task in listed.json()}
    assert not leaked, f"{peer}'s list shows {len(leaked)} of the owner's tasks: {sorted(leaked)}"
    return True


@schemathesis.check
def precondition_failed_only_with_if_match(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    if response.status_code != 412:
        return None
    sent = {name.lower() for name in response.request.headers}
    # Since finding 6, If-None-Match on a write is a precondition too (412 when it names the
    # task's current tag, or is `*`); a 412 with neither field is still a failure.
    assert sent & {"if-match", "if-none-match"}, (
        "412 Precondition Failed without an If-Match or If-None-Match header"
    )
    return True


@schemathesis.check
def bad_request_only_with_consistency_token(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    if response.status_code != 400 or _operation_id(case) not in {"listTasks", "getTask"}:
        return None
    sent = {name.lower() for name in response.request.headers}
    assert "consistency-token" in sent, "400 on a read without a Consistency-Token header"
    return True
