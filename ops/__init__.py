"""Operator use cases as services: dead letters (list, show, redrive, purge),
topic replay. Each returns plain data; `cli/` renders it and `api/` serialises it."""
