"""A test's hand on one of the emulator's v3 answers: a route answers ``change(body)`` instead of its body, for
the next few answers or for good, while every other answer stays correct. Done through the emulator's route
table, in process (the emulator itself is not changed), so the answers still travel over real HTTP."""

from __future__ import annotations

import copy
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from airflow_provider_cc.emulator import Emulator


class Rewrite:
    """Rewrites the 200 answers of one v3 route (a ``V3Api`` method name, e.g. ``get_campaign``).

    :param emu: a started emulator with its v3 API.
    :param route: the route's method name.
    :param change: the new body, from a copy of the correct one (``None`` is sent as ``null``).
    :param times: how many answers to rewrite (``-1``: every one until :meth:`stop`).
    :param ids: rewrite only answers for these path ids (the route's first group), e.g. one campaign.
    """

    def __init__(self, emu: Emulator, route: str, change: Callable[[Any], Any], *, times: int = 1,
                 ids: Collection[str] | None = None) -> None:
        api = emu.v3
        assert api is not None
        self.left, self.rewritten = times, 0
        self._lock = threading.Lock()
        original = getattr(api, route)  # a later Rewrite of the route replaces an earlier one

        def answer(query: dict[str, str], *groups: str, pairs: Any) -> tuple[int, Any]:
            status, body = original(query, *groups, pairs=pairs)
            with self._lock:
                hit = status == 200 and self.left != 0 and (ids is None or (groups and groups[0] in ids))
                if hit:
                    self.left -= 1
                    self.rewritten += 1
            return (status, change(copy.deepcopy(body))) if hit else (status, body)

        answer.original = original  # type: ignore[attr-defined]
        routes = api.router.routes
        found = [i for i, r in enumerate(routes) if getattr(r.handler, "original", r.handler) == original]
        assert len(found) == 1, f"no single v3 route {route}"
        replaced = dataclasses.replace(routes[found[0]], handler=answer)
        routes[found[0]] = replaced
        api.router.by_template[replaced.template] = replaced

    def stop(self) -> None:
        """From now on the route answers correctly."""
        with self._lock:
            self.left = 0
