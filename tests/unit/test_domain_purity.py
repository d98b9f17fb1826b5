"""The domain imports nothing that does I/O, reads a clock or draws randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import domain

BANNED = {
    "faust",
    "aiokafka",
    "confluent_kafka",
    "psycopg",
    "psycopg_pool",
    "aiohttp",
    "asyncio",
    "time",
    "random",
    "uuid",
    "os",
    "socket",
    "requests",
    "urllib",
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_modules_import_no_io() -> None:
    folder = Path(domain.__file__).parent
    offenders = {f.name: sorted(imported_roots(f) & BANNED) for f in folder.glob("*.py")}

    assert {name: bad for name, bad in offenders.items() if bad} == {}
