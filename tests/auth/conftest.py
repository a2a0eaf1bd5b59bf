"""Fixtures of the token tests: the hook tests' real redis-server."""

from __future__ import annotations

from tests.hooks.conftest import redis_server  # noqa: F401  (a real redis-server for the Redis token store)
