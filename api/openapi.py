"""The OpenAPI 3.1 document of every route the app serves (a test holds the
two equal). Request bodies come from the pydantic models; the rest is here."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import requires
from api.models import CreateMigrationIn, CutoverIn, EmptyIn, ReasonIn
from api.params import MAX_VERSION
from api.responses import ok
from domain import PhaseStatus, Status
from ops.dead_letters.requests import PurgeRequest, RedriveRequest

Schema = dict[str, Any]
REF = "#/components/schemas/{model}"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> Schema:
    return {"type": [kind, "null"], **extra}


TIME = _nullable("string", format="date-time")
SNAPSHOT: Schema = {
    "type": "object",
    "description": "the exported snapshot of the source a phase reads in (extract)",
    "required": ["id", "taken_at", "lsn"],
    "properties": {
        "id": {"type": "string", "description": "as pg_export_snapshot() gave it"},
        "taken_at": {"type": "string", "description": "when, by the source's clock"},
        "lsn": {"type": "string", "description": "the source's WAL position then"},
    },
}
SNAPSHOT_OR_NULL: Schema = {"oneOf": [_ref("Snapshot"), {"type": "null"}]}
# A live migration's (a spec with `cdc`: domain.live); null for the others.
CUTOVER_RESULT: Schema = {
    "type": "object",
    "description": "what a cutover ended with",
    "required": ["position", "source_rows", "target_rows", "source_checksum", "target_checksum"],
    "properties": {
        "position": {"type": "string", "description": "the source WAL position applied last"},
        "source_rows": {"type": "integer"},
        "target_rows": {"type": "integer"},
        "source_checksum": {"type": "string"},
        "target_checksum": {"type": "string"},
        "changes_applied": {"type": "integer"},
        "rows_verified": {
            "type": "integer",
            "description": "rows changed since the snapshot, compared row by row",
        },
        "sequences_synced": {"type": "integer"},
        "frozen": {"type": "boolean", "description": "writes on the source were frozen"},
    },
}
LIVE: dict[str, Schema] = {
    "lag_bytes": {
        **_nullable("integer"),
        "description": "bytes of source WAL not yet applied, as the last sync progress said",
    },
    "lag_seconds": {
        **_nullable("number"),
        "description": "age in seconds of the oldest change not yet applied (0: none pending)",
    },
    "position": {**_nullable("string"), "description": "the source WAL position applied last"},
    "cutover": {
        "oneOf": [_ref("CutoverIn"), {"type": "null"}],
        "description": "the options of the last cutover asked for",
    },
    "cutover_result": {"oneOf": [_ref("CutoverResult"), {"type": "null"}]},
}
# The pace of a phase's current run (a migration's: its current phase's).
PACE: dict[str, Schema] = {
    "rows_per_second": {
        **_nullable("number"),
        "description": "rows done per second since the run was requested (a resumed run"
        " counts only its own rows); null until time has passed",
    },
    "bytes_per_second": {
        **_nullable("number"),
        "description": "bytes streamed per second, likewise; null while none were counted",
    },
    "eta_seconds": {
        **_nullable("number"),
        "description": "seconds until rows_done reaches rows_total at rows_per_second, as of"
        " the phase's last progress; 0 once done; null without a total, before any row"
        " moved, and while paused, failed or cancelled",
    },
    "eta_at": {**TIME, "description": "when that is: the last progress's time plus eta_seconds"},
}
PHASE: Schema = {
    "type": "object",
    "required": ["phase", "status", "run", "rows_done", "rows_total", "bytes_done"],
    "properties": {
        "phase": {"type": "string"},
        "status": {"enum": [s.value for s in PhaseStatus]},
        "run": {"type": "integer"},
        "rows_done": {"type": "integer"},
        "rows_total": {"type": "integer"},
        "bytes_done": {"type": "integer", "description": "bytes the phase streamed"},
        "checkpoint": _nullable("string"),
        "score": _nullable("number"),
        "reason": _nullable("string"),
        "started_at": {"type": "string"},
        "finished_at": _nullable("string"),
        "updated_at": {"type": "string"},
        "snapshot": SNAPSHOT_OR_NULL,
        "run_started_at": {
            **TIME,
            "description": "when the current run was requested (null: from before the read"
            " model kept it)",
        },
        **PACE,
    },
}
MIGRATION: Schema = {
    "type": "object",
    "required": [
        "migration_id",
        "status",
        "version",
        "spec",
        "rows_done",
        "rows_total",
        "bytes_done",
        "phases",
    ],
    "properties": {
        "migration_id": {"type": "string"},
        "status": {"enum": [s.value for s in Status]},
        "phase": _nullable("string"),
        "version": {"type": "integer", "description": "sequence of the last event applied"},
        "spec": {
            **_nullable("object"),
            "description": "null only for a migration quarantined at its first event",
        },
        "run": {"type": "integer"},
        "checkpoint": _nullable("string"),
        "rows_done": {"type": "integer", "description": "the current phase's"},
        "rows_total": {"type": "integer", "description": "the current phase's"},
        "bytes_done": {"type": "integer", "description": "bytes streamed, over every phase"},
        "snapshot": {
            **SNAPSHOT_OR_NULL,
            "description": "the snapshot the source was last read in (by extract)",
        },
        **{
            name: {**schema, "description": f"the current phase's: {schema['description']}"}
            for name, schema in PACE.items()
        },
        "eta_seconds": {
            **PACE["eta_seconds"],
            "description": "when the current phase should end (later phases are not"
            f" estimated): {PACE['eta_seconds']['description']}",
        },
        "score": _nullable("number"),
        "reason": _nullable("string"),
        "created_at": TIME,
        "updated_at": TIME,
        "started_at": TIME,
        "finished_at": TIME,
        "feed_version": {"type": "integer"},
        "phases": {"type": "array", "items": _ref("Phase")},
        "quarantine": {
            "oneOf": [_ref("Quarantine"), {"type": "null"}],
            "description": "set while the read model holds the migration back (a gap, a fork"
            " or an unstorable event in its log); `migrator projection refold` lifts it",
        },
        "escaped_sequences": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "events a refold stored with each NUL character written as the six"
            " characters \\u0000 (PostgreSQL stores no NUL)",
        },
        **LIVE,
    },
}
QUARANTINE: Schema = {
    "type": "object",
    "required": ["reason", "at_sequence", "since"],
    "properties": {
        "reason": {"type": "string", "examples": ["gap: expected sequence 4, got 6"]},
        "at_sequence": {
            "type": "integer",
            "description": "the event it could not take; it and every later one are held",
        },
        "since": {"type": "string", "format": "date-time"},
    },
}
EVENT: Schema = {
    "type": "object",
    "required": ["sequence", "event_id", "type", "occurred_at", "causation_id", "payload"],
    "properties": {
        "sequence": {"type": "integer"},
        "event_id": {"type": "string"},
        "type": {"type": "string"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "causation_id": {"type": "string"},
        "payload": {"type": "object"},
    },
}
ACCEPTED: Schema = {
    "type": "object",
    "required": ["migration_id", "command_id", "position"],
    "properties": {
        "migration_id": {"type": "string"},
        "command_id": {"type": "string"},
        "position": {
            "type": "object",
            "properties": {"partition": {"type": "integer"}, "offset": {"type": "integer"}},
        },
        "outcome": {"enum": ["accepted", "pending"]},
        "version": {"type": "integer"},
        "migration": {"oneOf": [_ref("Migration"), {"type": "null"}]},
    },
}
BULK: Schema = {
    "type": "object",
    "required": ["count", "commands"],
    "properties": {
        "count": {"type": "integer"},
        "commands": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["migration_id", "command_id"],
                "properties": {
                    "migration_id": {"type": "string"},
                    "command_id": {"type": "string"},
                    "outcome": {"enum": ["accepted", "rejected", "pending"]},
                },
            },
        },
        "accepted": {"type": "integer"},
        "rejected": {"type": "integer"},
        "pending": {"type": "integer"},
    },
}
PROBLEM: Schema = {
    "type": "object",
    "required": ["status", "title"],
    "properties": {"status": {"type": "integer"}, "title": {"type": "string"}, "detail": {}},
}
PAGE: Schema = {
    "type": "object",
    "required": ["migrations", "next_cursor", "feed_version"],
    "properties": {
        "migrations": {"type": "array", "items": _ref("Migration")},
        "next_cursor": _nullable("string"),
        "feed_version": {"type": "integer"},
    },
}
CHANGES: Schema = {
    "type": "object",
    "required": ["migrations", "feed_version"],
    "properties": {
        "migrations": {"type": "array", "items": _ref("Migration")},
        "feed_version": {"type": "integer"},
    },
}
EVENTS: Schema = {
    "type": "object",
    "required": ["migration_id", "events"],
    "properties": {
        "migration_id": {"type": "string"},
        "events": {"type": "array", "items": _ref("Event")},
    },
}
READY: Schema = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ready", "not ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
HEALTH: Schema = {
    **READY,
    "properties": {**READY["properties"], "status": {"enum": ["ok", "degraded"]}},
}

COUNT: Schema = {"type": "integer", "minimum": 0}
TEXT: Schema = {"type": "string"}


def _rows(**fields: Schema) -> Schema:
    """An array of objects, each with every one of `fields`."""
    row = {"type": "object", "required": list(fields), "properties": fields}
    return {"type": "array", "items": row}


LAG: Schema = {
    "type": "object",
    "required": ["consumer_lag", "dlq_depth"],
    "properties": {
        "consumer_lag": _rows(group=TEXT, topic=TEXT, lag=COUNT),
        "dlq_depth": _rows(topic=TEXT, records=COUNT),
    },
}
SLOTS: Schema = {
    "type": "object",
    "required": ["slots", "unreachable"],
    "properties": {
        "slots": _rows(
            connection=TEXT,
            slot=TEXT,
            plugin=_nullable("string"),
            database=_nullable("string"),
            active={"type": "boolean"},
            retained_bytes=COUNT,
            lag_bytes=COUNT,
            wal_status=_nullable("string"),
            migration_id=_nullable("string"),
            migration_status=_nullable("string"),
            left_behind={"type": "boolean", "description": "no live migration owns it"},
        ),
        "unreachable": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "connection -> why its slots could not be read",
        },
    },
}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*codes: int, said: dict[int, str] | None = None) -> dict[str, Schema]:
    """The Problem answers of an operation; `said` words some codes its own way."""
    words = {
        400: "bad input: malformed or too deeply nested JSON, a bad or unknown parameter, a"
        " header that is not UTF-8 (the title says which)",
        401: "no valid bearer token",
        403: "the token's role may not do this",
        404: "no such migration",
        408: "the request body did not arrive within API_BODY_SECONDS",
        409: "the command was rejected (with ?wait=true); detail says why",
        413: "request body too large",
        422: "the body fails validation: each error names its field",
        426: "a WebSocket route called without Upgrade",
        429: "too many requests (or live or expensive ones at once) from this client; Retry-After",
        503: "a dependency (database, Kafka) is unavailable, too many live clients, or"
        " (commands) too many commands in flight; Retry-After",
        **(said or {}),
    }
    return {str(c): _json(_ref("Problem"), words[c]) for c in codes}


def _param(name: str, where: str, schema: Schema, description: str, **extra: Any) -> Schema:
    return {"name": name, "in": where, "schema": schema, "description": description, **extra}


MIGRATION_ID = _param(
    "migration_id", "path", {"type": "string", "minLength": 1}, "the migration", required=True
)
WAIT = _param("wait", "query", {"enum": ["true", "false"]}, "answer once the read model shows it")
TIMEOUT = _param(
    "timeout",
    "query",
    {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
    "seconds to wait (?wait=true, or a long poll)",
)
SINCE = _param(
    "since_version",
    "query",
    {"type": "integer", "minimum": 0, "maximum": MAX_VERSION},
    "long poll / resume: answer with what is newer than this version",
)
IDEMPOTENCY_KEY: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "^[!-~]{1,200}$",
    "description": "visible ASCII characters, no spaces",
}
IDEMPOTENCY = _param(
    "Idempotency-Key",
    "header",
    IDEMPOTENCY_KEY,
    "the same key gives the same command id, so a retried request has one effect",
)
LIMIT = {"type": "integer", "minimum": 1}
COMMON = (400, 401, 429, 503)
COMMAND = (400, 401, 403, 408, 413, 422, 429, 503)


def _body(model: str, required: bool) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": _ref(model)}}}


def _command(
    summary: str, body: str, required: bool, answer: str, codes: tuple[int, ...]
) -> Schema:
    return {
        "summary": summary,
        "parameters": [WAIT, TIMEOUT, IDEMPOTENCY],
        "requestBody": _body(body, required),
        "responses": {
            "202": _json(
                _ref(answer),
                "published to migration.commands (with ?wait=true: not yet visible in time,"
                ' "outcome": "pending")',
            ),
            "200": _json(_ref(answer), "with ?wait=true: the read model shows its effect"),
            **_problems(*codes),
        },
    }


def _steer(kind: str, body: str) -> Schema:
    operation = _command(
        f"{kind.capitalize()} a migration", body, False, "Accepted", (*COMMAND, 404, 409)
    )
    operation["parameters"] = [MIGRATION_ID, *operation["parameters"]]
    return operation


def _socket(summary: str, parameters: list[Schema]) -> Schema:
    return {
        "summary": summary,
        "description": "A WebSocket (subprotocol migrator.v1; a browser may send its token as"
        " the subprotocol bearer.<base64url(token)>). Pushes JSON messages: hello, then"
        " each change.",
        "parameters": parameters,
        "responses": {
            "101": {"description": "switching to WebSocket"},
            **_problems(
                *COMMON,
                426,
                *((404,) if parameters[0] is MIGRATION_ID else ()),
                said={426: "called as plain HTTP, without the WebSocket handshake (Upgrade)"},
            ),
        },
    }


def _file(summary: str, media: str) -> Schema:
    ok_ = {"description": summary, "content": {media: {"schema": {"type": "string"}}}}
    return {"summary": summary, "security": [], "responses": {"200": ok_, **_problems(400, 429)}}


KEYS: Schema = {"type": "array", "items": TEXT}
DIFF_RANGE = _rows(
    lo={"type": ["string", "null"]},
    hi={"type": ["string", "null"]},
    depth=COUNT,
    source_rows=COUNT,
    target_rows=COUNT,
    source_checksum=TEXT,
    target_checksum=TEXT,
    same={"type": "boolean"},
)
DIFF_REPORT: Schema = {
    "type": "object",
    "description": "A migration's latest row-level diff of source (as mapped) and target",
    "required": ["migration_id", "status", "clean", "missing", "extra", "different"],
    "properties": {
        "migration_id": TEXT,
        "status": TEXT,
        "source": {"type": "object"},
        "target": {"type": "object"},
        "key": TEXT,
        "sequence": COUNT,
        "recorded_at": {"type": "string", "format": "date-time"},
        "clean": {"type": "boolean", "description": "no key missing, different or to delete"},
        "phase": {"type": "string", "description": "reconcile, diff or repair"},
        "missing": {**COUNT, "description": "keys in the source, not the target"},
        "extra": {**COUNT, "description": "keys in the target, not the source"},
        "different": {**COUNT, "description": "keys in both, with other values"},
        "differing": {**COUNT, "description": "keys a repair re-copies (or deletes)"},
        "source_rows": COUNT,
        "target_rows": COUNT,
        "samples": {
            "type": "object",
            "properties": {"missing": KEYS, "extra": KEYS, "different": KEYS},
        },
        "ranges": {**DIFF_RANGE, "description": "key ranges compared (bounded)"},
        "ranges_compared": COUNT,
        "snapshot": SNAPSHOT_OR_NULL,
        "taken_at": TEXT,
        "seconds": {"type": "number"},
    },
}


def _diff_paths() -> dict[str, dict[str, Schema]]:
    """The diff report, and the commands that take a diff and repair what it found."""
    return {
        "/api/v1/migrations/{migration_id}/diff": {
            "get": {
                "summary": "The migration's latest row-level diff report (viewer)",
                "parameters": [MIGRATION_ID],
                "responses": {
                    "200": _json(_ref("DiffReport"), "the report"),
                    **_problems(*COMMON, 404, said={404: "no such migration, or no diff yet"}),
                },
            },
            "post": _steer("diff", "EmptyIn"),
        },
        "/api/v1/migrations/{migration_id}/repair": {"post": _steer("repair", "EmptyIn")},
        "/dashboard/diff": {
            "get": {
                **_file("The diff report page", "text/html"),
                "parameters": [
                    _param("id", "query", {"type": "string"}, "the migration whose report to show")
                ],
            }
        },
        "/dashboard/diff.js": {"get": _file("The diff report page's script", "text/javascript")},
    }


def paths() -> dict[str, dict[str, Schema]]:
    one = [MIGRATION_ID]
    return {
        "/health": {
            "get": {
                "summary": "The process is up (degraded while Kafka or the read model is away)",
                "security": [],
                "responses": {
                    "200": _json(_ref("Health"), "up: ok, or degraded naming what is away"),
                    **_problems(400),
                },
            }
        },
        "/ready": {
            "get": {
                "summary": "Kafka and the read model are reachable",
                "security": [],
                "responses": {
                    "200": _json(_ref("Ready"), "ready"),
                    "503": _json(_ref("Ready"), "not ready: checks says what is not"),
                    **_problems(400),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of this API process",
                "security": [],
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_problems(400),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": _json({"type": "object"}, "OpenAPI 3.1"),
                    **_problems(400, 429),
                },
            }
        },
        "/dashboard": {"get": _file("The dashboard page", "text/html")},
        "/dashboard/app.js": {"get": _file("The dashboard's script", "text/javascript")},
        "/dashboard/app.css": {"get": _file("The dashboard's style", "text/css")},
        "/api/v1/whoami": {
            "get": {
                "summary": "The role of the presented token (open: null without one)",
                "security": [{}, {"bearer": []}],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["role"],
                            "properties": {"role": {"enum": ["viewer", "operator", None]}},
                        },
                        "the role; null without a token (operator when the API is open)",
                    ),
                    **_problems(401, 429),
                },
            }
        },
        "/api/v1/migrations": {
            "get": {
                "summary": "List migrations, newest first, a page at a time",
                "parameters": [
                    _param(
                        "status",
                        "query",
                        {"type": "array", "items": {"enum": [s.value for s in Status]}},
                        "only these statuses (repeat the parameter, or comma-separate)",
                        style="form",
                        explode=True,
                    ),
                    _param("limit", "query", {**LIMIT, "maximum": 500}, "page size (default 50)"),
                    _param(
                        "cursor",
                        "query",
                        {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
                        "next_cursor of the last page (opaque: only one this API gave out)",
                    ),
                    _param(
                        "quarantined",
                        "query",
                        {"type": "boolean"},
                        "only the quarantined migrations (true), or only the others (false)",
                    ),
                ],
                "responses": {
                    "200": _json(_ref("MigrationPage"), "a page"),
                    **_problems(
                        *COMMON,
                        said={
                            400: "a bad or unknown parameter, or a cursor this API did not give"
                            " out (the title says which)"
                        },
                    ),
                },
            },
            "post": _command(
                "Start a migration", "CreateMigrationIn", True, "Accepted", (*COMMAND, 409)
            ),
        },
        "/api/v1/migrations/pause-all": {
            "post": _command("Pause every RUNNING migration", "ReasonIn", False, "Bulk", COMMAND)
        },
        "/api/v1/migrations/resume-all": {
            "post": _command("Resume every PAUSED migration", "EmptyIn", False, "Bulk", COMMAND)
        },
        "/api/v1/migrations/{migration_id}": {
            "get": {
                "summary": "One migration; with since_version, a long poll",
                "parameters": [*one, SINCE, TIMEOUT],
                "responses": {
                    "200": _json(_ref("Migration"), "the migration"),
                    **_problems(*COMMON, 404),
                },
            }
        },
        "/api/v1/migrations/{migration_id}/events": {
            "get": {
                "summary": "A migration's events, in order",
                "parameters": [
                    *one,
                    _param(
                        "after",
                        "query",
                        {"type": "integer", "minimum": 0, "maximum": MAX_VERSION},
                        "only events after this sequence",
                    ),
                    _param("limit", "query", {**LIMIT, "maximum": 10_000}, "at most this many"),
                ],
                "responses": {
                    "200": _json(_ref("EventList"), "its events"),
                    **_problems(*COMMON, 404),
                },
            }
        },
        "/api/v1/migrations/{migration_id}/live": {
            "get": _socket("Live: this migration's changes", [*one, SINCE])
        },
        "/api/v1/migrations/{migration_id}/pause": {"post": _steer("pause", "ReasonIn")},
        "/api/v1/migrations/{migration_id}/resume": {"post": _steer("resume", "EmptyIn")},
        "/api/v1/migrations/{migration_id}/cancel": {"post": _steer("cancel", "ReasonIn")},
        "/api/v1/migrations/{migration_id}/retry": {"post": _steer("retry", "EmptyIn")},
        "/api/v1/migrations/{migration_id}/cutover": {
            "post": {
                **_steer("cutover", "CutoverIn"),
                "summary": "Cut a SYNCING migration over, gated on its lag",
            }
        },
        "/api/v1/migrations/{migration_id}/abort-cutover": {
            "post": {
                **_steer("abort-cutover", "ReasonIn"),
                "summary": "Abort a cutover before its switch; the migration syncs again",
            }
        },
        **_diff_paths(),
        "/api/v1/changes": {
            "get": {
                "summary": "Long poll: migrations changed after a feed version",
                "parameters": [
                    SINCE,
                    TIMEOUT,
                    _param("limit", "query", {**LIMIT, "maximum": 500}, "at most this many"),
                ],
                "responses": {"200": _json(_ref("Changes"), "the changes"), **_problems(*COMMON)},
            }
        },
        "/api/v1/live": {"get": _socket("Live: every migration's changes", [SINCE])},
        **_dead_letter_paths(),
        "/api/v1/lag": {
            "get": {
                "summary": "Consumer lag per group and topic, DLQ depth per dead-letter topic"
                " (viewer)",
                "responses": {
                    "200": _json(_ref("Lag"), "lag and depth, counted now"),
                    **_problems(*COMMON, 404),
                },
            }
        },
        "/api/v1/slots": {
            "get": {
                "summary": "The migrations' replication slots on the configured databases, with"
                " the WAL each keeps (viewer)",
                "responses": {
                    "200": _json(_ref("Slots"), "the slots, read now"),
                    **_problems(*COMMON),
                },
            }
        },
    }


TOPIC = _param(
    "topic",
    "path",
    {"type": "string", "minLength": 1},
    "a dead-letter topic, or the topic it belongs to (migration.commands)",
    required=True,
)


def _dead_letter_paths() -> dict[str, dict[str, Schema]]:
    found = _json({"type": "object"}, "the answer, as JSON")
    viewer, operator = (*COMMON, 404), (*COMMON, 403, 404, 413, 422)
    position = [
        TOPIC,
        _param("partition", "path", {"type": "integer", "minimum": 0}, "", required=True),
        _param("offset", "path", {"type": "integer", "minimum": 0}, "", required=True),
    ]
    base = "/api/v1/dead-letters/{topic}"
    return {
        base: {
            "get": {
                "summary": "Dead letters of a topic, with their error headers (viewer)",
                "parameters": [TOPIC],
                "responses": {"200": found, **_problems(*viewer)},
            }
        },
        base + "/{partition}/{offset}": {
            "get": {
                "summary": "One dead letter, decoded (viewer)",
                "parameters": position,
                "responses": {"200": found, **_problems(*viewer)},
            }
        },
        base + "/redrive": {
            "post": {
                "summary": "Send dead letters back to their topic, exactly once (operator)",
                "parameters": [TOPIC],
                "requestBody": _body("RedriveRequest", True),
                "responses": {
                    "200": found,
                    **_problems(
                        *operator,
                        said={
                            422: "the body fails validation, or an offset asked for holds no"
                            " dead letter, or one that failed max_attempts times, or one with"
                            " no original topic (detail says which)"
                        },
                    ),
                },
            }
        },
        base + "/purge": {
            "post": {
                "summary": "Delete dead letters (operator; confirm: true to delete)",
                "parameters": [TOPIC],
                "requestBody": _body("PurgeRequest", True),
                "responses": {
                    "200": found,
                    **_problems(
                        *operator,
                        said={
                            422: "the body fails validation, or `before` names a partition the"
                            " dead-letter topic does not have"
                        },
                    ),
                },
            }
        },
    }


def _model_schemas() -> dict[str, Schema]:
    found: dict[str, Schema] = {}
    for model in (CreateMigrationIn, ReasonIn, EmptyIn, CutoverIn, RedriveRequest, PurgeRequest):
        schema = model.model_json_schema(ref_template=REF)
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Migration orchestrator API",
            "version": "1",
            "description": "Commands go to Kafka (202); queries read the PostgreSQL read model."
            " Viewer tokens query and watch; operator tokens also send commands.",
        },
        "paths": paths(),
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **_model_schemas(),
                "Migration": MIGRATION,
                "Quarantine": QUARANTINE,
                "Phase": PHASE,
                "Snapshot": SNAPSHOT,
                "CutoverResult": CUTOVER_RESULT,
                "Event": EVENT,
                "EventList": EVENTS,
                "MigrationPage": PAGE,
                "Changes": CHANGES,
                "Accepted": ACCEPTED,
                "Bulk": BULK,
                "Problem": PROBLEM,
                "Ready": READY,
                "Health": HEALTH,
                "Lag": LAG,
                "Slots": SLOTS,
                "DiffReport": DIFF_REPORT,
            },
        },
    }


DOCUMENT = document()


@requires(None)
async def serve(request: web.Request) -> web.StreamResponse:
    return ok(DOCUMENT)
