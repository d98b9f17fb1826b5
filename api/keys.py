"""Typed keys for the aiohttp application's state."""

from __future__ import annotations

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from api.publisher import Publisher
from config import KafkaNames, Settings

SETTINGS = web.AppKey("settings", Settings)
NAMES = web.AppKey("names", KafkaNames)
POOL = web.AppKey("pool", AsyncConnectionPool)
PUBLISHER = web.AppKey("publisher", Publisher)
