"""The HTTP API (aiohttp): commands, queries, health."""
