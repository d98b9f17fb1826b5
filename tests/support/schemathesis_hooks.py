"""Schemathesis hooks for tests/integration/test_api_schemathesis.py (loaded
through SCHEMATHESIS_HOOKS): a wait or long poll (`wait=true`, or a GET of
an operation that declares `timeout`) gets `timeout` half a second unless the
generated one is invalid (left as generated, to be refused), so that waits do
not stretch the run. Operations that do not declare `timeout` get none (they
refuse unknown query parameters)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Any, kwargs: dict[str, Any]) -> None:
    query = case.query
    if not isinstance(query, dict):
        return
    if "timeout" not in case.operation.query:
        return
    if "timeout" not in query:
        if case.method == "GET" or query.get("wait") == "true":
            query["timeout"] = 0.5
        return
    try:
        seconds = float(query["timeout"])
    except (TypeError, ValueError):
        return
    if 0.5 < seconds <= 60:
        query["timeout"] = 0.5
