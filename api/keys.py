"""Typed keys for the aiohttp application's state."""

from __future__ import annotations

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from api.admission import CommandSlots
from api.auth import Tokens
from api.changes import ChangeHub
from api.effects import EffectReads
from api.executor import Offload
from api.publisher import Publisher
from api.ratelimit import RateLimiter
from api.slots import LiveSlots
from config import KafkaNames, Settings
from ops.dead_letters.listing import ListingCache

SETTINGS = web.AppKey("settings", Settings)
NAMES = web.AppKey("names", KafkaNames)
POOL = web.AppKey("pool", AsyncConnectionPool)
PROBE_POOL = web.AppKey("probe_pool", AsyncConnectionPool)  # /health and /ready only
PUBLISHER = web.AppKey("publisher", Publisher)
HUB = web.AppKey("hub", ChangeHub)
TOKENS = web.AppKey("tokens", Tokens)
LIMITER = web.AppKey("limiter", RateLimiter)
LIVE = web.AppKey("live", LiveSlots)
OFFLOAD = web.AppKey("offload", Offload)
LETTERS = web.AppKey("letters", ListingCache)
COMMANDS = web.AppKey("commands", CommandSlots)
EFFECTS: web.AppKey[EffectReads] = web.AppKey("effects")  # reads shared by waiting commands
