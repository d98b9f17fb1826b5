"""Calls to the HTTP API from the CLI, with the bearer token of `API_TOKEN`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import typer
from rich.console import Console

from config import load_settings

console = Console(stderr=True)


def call_api(method: str, url: str, body: object = None, timeout: float = 30.0) -> Any:
    """The JSON answer; a refusal, a timeout or no API exits 1, saying which."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    token = load_settings().api.token
    if token is not None:
        req.add_header("Authorization", f"Bearer {token.get_secret_value()}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            _say_trace(resp.headers.get("traceresponse"))
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        console.print(f"[red]{method} {url}: {exc.code} {exc.read().decode()}[/red]")
        raise typer.Exit(1) from exc
    except TimeoutError as exc:
        console.print(f"[red]{method} {url}: no answer within {timeout:g} s[/red]")
        raise typer.Exit(1) from exc
    except urllib.error.URLError as exc:
        console.print(f"[red]{method} {url}: {exc.reason} (is the API running?)[/red]")
        raise typer.Exit(1) from exc


def _say_trace(traceresponse: str | None) -> None:
    """With traces on, the API names the request's trace: `migrator trace <id>` shows it."""
    if traceresponse and traceresponse.count("-") == 3:
        console.print(f"trace: migrator trace {traceresponse.split('-')[1]}")
