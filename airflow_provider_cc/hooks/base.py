"""What the v2 and v3 hooks share on top of their transport: the session, closing it, one GET of a path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class TransportHook:
    """Mixed into a hook whose ``transport`` is a cached property (:class:`~.transport.Transport` or its v3
    dialect)."""

    transport: Any

    def get_conn(self) -> Any:
        """The hook's single ``requests.Session``."""
        return self.transport.session

    def close(self) -> None:
        """Release the keep-alive connections."""
        if "transport" in self.__dict__:
            self.transport.close()

    def _get(self, path: str, params: dict[str, Any] | None, what: str,
             check: Callable[[Any], Any] | None = None) -> Any:
        return self.transport.get_json(self.transport.resolve(path, what=what), params, what=what, check=check)
