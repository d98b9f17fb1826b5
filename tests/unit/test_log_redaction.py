"""Every secret a process knows is masked in whatever it logs: bearer tokens
(also in the base64 form of the WebSocket subprotocol), the database
passwords in DSNs, and connection passwords, in messages, their arguments and
tracebacks alike."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from config import Settings
from config.redaction import MASK, redact, secrets_of

ROOT = Path(__file__).resolve().parents[2]
TOKEN, OPERATOR = "viewer-token-5f1c2e", "op-token-99ab0d"
DB_PASSWORD, CONN_PASSWORD = "s3cret-db-pw", "conn-pw-7781"
SCRIPT = """
import base64, logging
from config import load_settings
from config.logs import configure_logging
configure_logging(load_settings())
log = logging.getLogger("api.live")
offered = base64.urlsafe_b64encode(b"{token}").decode().rstrip("=")
log.warning("subprotocols %s", ["bearer." + offered])
log.warning("header line: Authorization: Bearer {operator}")
try:
    raise ValueError("cannot connect to postgresql://migrator:{db}@127.0.0.1/migrations")
except ValueError:
    log.exception("connect failed")
log.error("password=%s", "{conn}")
"""


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "API_TOKENS": json.dumps({TOKEN: "viewer", OPERATOR: "operator"}),
        "DATABASE_URL": f"postgresql://migrator:{DB_PASSWORD}@127.0.0.1/migrations",
        "PHASE_CONNECTIONS": json.dumps(
            {"warehouse": {"database": "w", "user": "u", "password": CONN_PASSWORD}}
        ),
    }


def test_a_process_logs_no_secret_in_any_form() -> None:
    script = SCRIPT.format(token=TOKEN, operator=OPERATOR, db=DB_PASSWORD, conn=CONN_PASSWORD)

    done = subprocess.run(
        [sys.executable, "-c", script], env=environment(), capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    logged = done.stderr
    encoded = base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("=")
    for secret in (TOKEN, encoded, OPERATOR, DB_PASSWORD, CONN_PASSWORD):
        assert secret not in logged, f"{secret!r} logged:\n{logged}"
    assert logged.count(MASK) == 4, logged
    assert "connect failed" in logged and "Traceback" in logged


def test_every_form_of_a_secret_is_masked_and_ordinary_words_are_not() -> None:
    settings = Settings(api={"tokens": json.dumps({"abc": "viewer", TOKEN: "operator"})})
    secrets = secrets_of(settings)

    assert redact(f"t={TOKEN} b64={base64.b64encode(TOKEN.encode()).decode()}", secrets) == (
        f"t={MASK} b64={MASK}"
    )
    assert redact("abc is too short to be taken for a secret", secrets) == (
        "abc is too short to be taken for a secret"
    )
