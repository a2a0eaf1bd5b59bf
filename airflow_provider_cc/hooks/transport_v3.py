"""The v3 dialect of the transport: OAuth2 bearer tokens from the token manager, ``Content-Type`` sent,
v3's error answers. Everything else (deadline, size cap, no redirects, redaction, the retry policy and the
key's limiter, here named by the client id) is the one transport's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import (
    ConstantContactAuthError,
    ConstantContactNotFoundError,
    ConstantContactQuotaSpentError,
    ConstantContactRequestError,
    ConstantContactThrottledError,
)
from airflow_provider_cc.hooks.transport import Transport, _Retryable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_cc.auth.tokens import TokenManager
    from airflow_provider_cc.hooks.connection_v3 import V3Settings

THROTTLED = "throttled"
QUOTA_EXCEEDED = "quota_exceeded"


def quota_reset(now: datetime | None = None) -> datetime:
    """The next 00:00 UTC, when an application's day of requests starts again."""
    now = now or datetime.now(timezone.utc)
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


class V3Transport(Transport):
    """GETs to ``https://api.cc.email/v3``, authenticated by the connection's :class:`TokenManager`.

    :param settings: the v3 connection's checked settings.
    :param tokens: the connection's token manager (shared by the process's hooks).
    """

    api_version = "v3"
    credentials = "the access token"

    def __init__(self, settings: V3Settings, tokens: TokenManager, **kwargs: Any) -> None:
        self.tokens = tokens
        super().__init__(settings, **kwargs)  # type: ignore[arg-type]

    def _authenticate(self, settings: Any) -> None:
        self.session.headers["Content-Type"] = "application/json"

    def _prepare(self, after: float | None) -> None:
        self.tokens.access_token(after=after)  # a refresh that is due happens before the wait, holding no slot

    def _request_headers(self, after: float | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.access_token(after=after)}"}

    def redact(self, text: str) -> str:
        """Remove the connection's secrets and every token seen so far (plain or URL-encoded)."""
        return self.tokens.redact(super().redact(text))

    def _unauthorized(self, headers: dict[str, str] | None, failure: ConstantContactAuthError,
                      after: float | None) -> float | None:
        """A 401: send once more with a token from a refresh answered after this 401 (never a token another
        thread refreshed before it); a 401 to that one too fails, naming the likely cause."""
        token = (headers or {}).get("Authorization", "").removeprefix("Bearer ")
        refused_at = self.tokens.unauthorized(token)
        if after is None:
            return refused_at
        raise ConstantContactAuthError(
            f"{failure} A freshly refreshed access token was refused too: the user who authorized the app may "
            "have revoked its access or lost their account, or the app's API key was regenerated. Re-authorize: "
            f"python -m airflow_provider_cc.auth login --conn-id {self.tokens.settings.conn_id}",
            status=401, error_key=failure.error_key) from None

    def _raise_for(self, status: int, text: str, headers: Mapping[str, str], what: str) -> None:
        key, detail, retry_after = self._error(status, text, headers)
        if status == 429 and (key or "").strip().lower() == QUOTA_EXCEEDED:  # the API's case varies
            reset = quota_reset()
            left = reset - datetime.now(timezone.utc)
            raise ConstantContactQuotaSpentError(
                f"{what}: the application's daily quota (10,000 requests a day, shared by every account pulled with "
                f"this client id) is spent ({detail}). It resets at 00:00 UTC ({reset:%Y-%m-%d %H:%M} UTC, in "
                f"{left.seconds // 3600} h {left.seconds % 3600 // 60} min); run the task again then, or ask Constant "
                "Contact for a higher limit.", status=status, error_key=key)
        if status == 429:  # throttled (4 requests a second per application), or a 429 without a key
            raise _Retryable(f"over the application's requests-per-second limit ({detail})", status=status,
                             error_key=key, retry_after=retry_after, over_qps=True,
                             final=ConstantContactThrottledError)
        if status >= 500:
            raise _Retryable(f"server error ({detail})", status=status, error_key=key, retry_after=retry_after)
        if status == 401:
            raise ConstantContactAuthError(
                f"{what}: the API refused the access token ({detail}): it expired early or was revoked.",
                status=status, error_key=key)
        if status == 403:
            state = self.tokens.state()
            granted = f" (this token's scopes: {state.scope})" if state is not None and state.scope else ""
            raise ConstantContactAuthError(
                f"{what}: forbidden ({detail}). Likely causes: a missing scope{granted} (reports need "
                "campaign_data, contact reports contact_data: log in again with those scopes), a missing user "
                "privilege (campaign:read, ui:campaign:metrics: the user who authorized the app must have them), "
                "or the application is deactivated in Constant Contact's developer portal.",
                status=status, error_key=key)
        if status == 404:
            raise ConstantContactNotFoundError(
                f"{what} was not found ({detail}). Check the id (v3 ids are UUIDs); deleted campaigns answer 404.",
                status=status, error_key=key)
        if status == 415:
            raise ConstantContactRequestError(
                f"{what}: the API refused the request's media type ({detail})", status=status, error_key=key)
        raise ConstantContactRequestError(f"{what}: the API refused the request ({detail})",
                                          status=status, error_key=key)
