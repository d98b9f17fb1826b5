"""The HTTP API (aiohttp): commands, queries, live updates, the dashboard, health."""
