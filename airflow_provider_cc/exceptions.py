"""The provider's exception types. Messages never carry the api_key, the token or a full URL."""

from __future__ import annotations

from airflow_provider_cc._compat import AirflowException, AirflowFailException


class ConstantContactError(AirflowException):
    """Any failure talking to Constant Contact.

    :param message: what went wrong and what to do about it.
    :param status: HTTP status, when the API answered.
    :param error_key: the API's ``error_key``, when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None, error_key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_key = error_key


class ConstantContactInputError(ConstantContactError, AirflowFailException, ValueError):
    """Bad arguments, refused before any request is sent. Task retries cannot help."""


class ConstantContactAuthError(ConstantContactError, AirflowFailException):
    """401, or 403 for an inactive api_key: the credentials are wrong."""


class ConstantContactNotFoundError(ConstantContactError, AirflowFailException):
    """404: the campaign or contact does not exist (or was deleted)."""


class ConstantContactQuotaExceededError(ConstantContactError):
    """403 ``over.ratelimit``: the key's daily quota is spent until the next day."""


class ConstantContactThrottledError(ConstantContactError):
    """403 ``over.qps`` or 429 still answered after every retry."""


class ConstantContactServerError(ConstantContactError):
    """5xx, a dropped connection, a timeout or an unreadable body, still failing after every retry."""


class ConstantContactRequestError(ConstantContactError, AirflowFailException):
    """400/406 or another client error: the API refused the request as sent."""


class ConstantContactResponseError(ConstantContactError):
    """An answer the provider cannot use: a 200 without the v2 page shape (after every retry), a page above
    the size cap, or JSON nested too deeply to read."""


class ConstantContactPagingError(ConstantContactResponseError):
    """The API's ``next_link`` chain loops (a link seen before) or runs far past what a report can hold.
    Stopping is the only way not to write records twice."""


class ConstantContactRateLimiterError(ConstantContactError):
    """The shared rate limiter (Redis) could not be reached, so no request was sent."""


class ConstantContactStorageUnavailableError(ConstantContactError):
    """The object store could not be reached when the destination was checked (a refused connection, a
    timeout, a 5xx or 429), so nothing was requested from the API. Transient: Airflow's retries apply."""


class ConstantContactDataError(ConstantContactError, AirflowFailException):
    """The API sent records the provider cannot place, e.g. a date it cannot read. Retries get the same data."""


class ConstantContactUnavailableError(RuntimeError):
    """The API could not be reached up to a sensor's timeout, so whether the campaign was sent is unknown.

    Deliberately not an ``AirflowException``: Airflow turns those into skips under ``soft_fail=True``, and
    an outage must fail the task (its retries apply), never skip the downstream pulls.
    """


class ConstantContactStateError(ConstantContactError, AirflowFailException):
    """A state file under the root (a checkpoint) cannot be read, or was not written by the provider. The
    message names the file and what to do; retrying reads the same file."""


class ConstantContactBudgetError(ConstantContactError, AirflowFailException):
    """``max_requests`` is too small for a try to make any progress: every retry would spend its whole budget
    and commit nothing. The message says how large it must be."""


class ConstantContactQuotaSpentError(ConstantContactQuotaExceededError, AirflowFailException):
    """v3 429 ``quota_exceeded``: the application's day of requests is spent until 00:00 UTC. Task retries
    (minutes apart) cannot help, so the task fails at once; the message says when the quota resets."""


class ConstantContactTokenError(ConstantContactAuthError):
    """v3 OAuth2: the refresh-token chain is broken (``invalid_grant`` after re-reading the store), or a
    rotated refresh token could not be stored. Retries cannot help; the message says how to re-authorize."""


class ConstantContactTokenStoreError(ConstantContactError):
    """The token store could not be read or locked (a transient outage: task retries apply)."""


class ConstantContactIncompleteError(ConstantContactError):
    """With ``on_incomplete="fail"``: the files hold another number of records than Constant Contact counts
    for a report of a campaign whose whole history they hold. The message lists them; a retry pulls again."""
