"""Fault injection for the emulator: throttling, daily quota, 500s, latency, drops, malformed bodies."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultConfig:
    """What can go wrong, and how often.

    :param qps: requests per second allowed per api_key (0: no limit); excess gets 403 over.qps.
    :param daily_quota: requests allowed in all (0: no limit); then 403 over.ratelimit.
    :param error_rate: fraction of requests answered 500.
    :param latency: seconds added to every response.
    :param drop_rate: fraction of requests whose connection is closed with no answer.
    :param malformed_rate: fraction of 200 answers whose JSON body is cut short.
    :param seed: seeds the fault dice, so a run's faults repeat.
    """

    qps: float = 0
    daily_quota: int = 0
    error_rate: float = 0.0
    latency: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    seed: int = 7


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject. Thread-safe."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._dice = random.Random(config.seed)
        self._recent: deque[float] = deque()
        self.requests = 0

    def decide(self) -> str | None:
        """One of ``drop``, ``quota``, ``qps``, ``error``, ``malformed`` or ``None``."""
        cfg = self.config
        with self._lock:
            self.requests += 1
            roll = self._dice.random()
            if cfg.drop_rate and roll < cfg.drop_rate:
                return "drop"
            if cfg.daily_quota and self.requests > cfg.daily_quota:
                return "quota"
            if cfg.qps:
                now = time.monotonic()
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                if len(self._recent) >= cfg.qps:
                    return "qps"
                self._recent.append(now)
            roll = self._dice.random()
            if cfg.error_rate and roll < cfg.error_rate:
                return "error"
            if cfg.malformed_rate and roll < cfg.error_rate + cfg.malformed_rate:
                return "malformed"
        return None
