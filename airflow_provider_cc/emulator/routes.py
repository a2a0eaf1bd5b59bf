"""The emulator's routes, matched in one place: each is named by its template (``GET /v3/emails/{id}``), which the
one-shot faults (:mod:`.faults`) are armed for and the served-routes record counts.

A route also says what its 200 answers look like (:class:`Shape`): where its list of items is, their id, enum
and date fields, how it pages. A fault that changes one part of an answer ("an item without its id", "a next
link to another host") reads it there, so one fault applies to every route that has that part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Shape:
    """What a route's 200 answers look like, for faults that change one part of them.

    :param items: the key of the answer's list of items; ``""``: the answer is the list; ``None``: no list (the
        item faults then change the answer itself).
    :param id: an item's id field.
    :param enum: an item's enum field.
    :param dates: an item's date field, or the fields one may have (records of mixed reports); the list is
        ordered by it, newest first.
    :param records: the items are activity records (a copy dated long before is a stray record, not a second
        listing of one item).
    :param paging: where the next link is: ``v2`` (``meta.pagination.next_link``), ``v3`` (``_links.next.href``)
        or ``None`` (not paged).
    :param token: the answer is an OAuth2 token answer (``access_token``, ``expires_in``...).
    """

    items: str | None = None
    id: str | None = None
    enum: str | None = None
    dates: tuple[str, ...] = ()
    records: bool = False
    paging: str | None = None
    token: bool = False


@dataclass(frozen=True)
class Route:
    """One endpoint of the emulator.

    :param template: ``METHOD /path/{placeholder}``, what faults and the served record name it by.
    :param api: ``v2``, ``v3`` or ``oauth``: which server answers it and how its errors look.
    :param handler: computes the answer from the query (and, for POSTs, the request) and the placeholders.
    :param shape: what its 200 answers look like.
    :param writes: answering changes the server's state (a token is issued, a chain rotated): a fault that
        replaces the answer does not let the request through first, and one that changes the answer works on a
        stand-in for a request that would move a chain, so that no answer the client never got moves one.
    """

    template: str
    api: str
    handler: Callable[..., Any]
    shape: Shape = field(default_factory=Shape)
    writes: bool = False
    pattern: re.Pattern[str] = field(default=re.compile(""), compare=False, repr=False)

    @property
    def method(self) -> str:
        return self.template.split(" ", 1)[0]


class Router:
    """The routes of the emulator's APIs, in the order they are tried; the first whose template matches wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.by_template: dict[str, Route] = {}

    def add(self, template: str, handler: Callable[..., Any], *, api: str, shape: Shape | None = None,
            writes: bool = False, **params: str) -> None:
        """Add a route; each ``{name}`` of the template matches ``params[name]`` (a regex; default ``[^/]+``)."""
        method, _, path = template.partition(" ")
        if template in self.by_template or method not in ("GET", "POST") or not path.startswith("/"):
            raise ValueError(f"route {template!r} is a duplicate or not 'METHOD /path'")
        pieces, end = [], 0
        for match in _PLACEHOLDER.finditer(path):
            pieces += [re.escape(path[end:match.start()]), f"({params.get(match.group(1), '[^/]+')})"]
            end = match.end()
        pieces.append(re.escape(path[end:]))
        route = Route(template, api, handler, shape or Shape(), writes, re.compile("".join(pieces)))
        self.routes.append(route)
        self.by_template[template] = route

    def match(self, method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
        """The route answering ``method path`` and its placeholders' values, or ``None``."""
        for route in self.routes:
            if route.method == method:
                found = route.pattern.fullmatch(path)
                if found:
                    return route, found.groups()
        return None

    def templates(self) -> list[str]:
        """Every route's template, in order."""
        return [route.template for route in self.routes]
