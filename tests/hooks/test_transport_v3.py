"""The v3 dialect of the transport over real HTTP: the emulator's OAuth2 server issues the tokens, and its v3 API
answers behind a front that sees each request's token (and may refuse it): the token is attached after the
limiter's wait, a 401 is retried only with a token refreshed after it, the daily quota in any letter case."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_cc.emulator import V3Options
from airflow_provider_cc.exceptions import ConstantContactAuthError, ConstantContactQuotaSpentError
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from tests.conftest import V3_CONN_ENV, start_v3
from tests.hooks.conftest import HostileServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_cc.emulator import Emulator
    from tests.hooks.conftest import HostileHandler


class Front:
    """The emulator's v3 API behind a server that records ``(token, status)`` of each request; ``decide(n,
    token)`` may answer instead: a ``(status, body)``, or ``None`` to pass the request on."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.seen: list[tuple[str, int]] = []
        self.decide: Callable[[int, str], tuple[int, Any] | None] = lambda n, token: None
        self.server = HostileServer(self._respond)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def _respond(self, h: HostileHandler, n: int) -> None:
        auth = h.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        decided = self.decide(n, token)
        if decided is None:
            answer = requests.get(self.emu.url + h.path, headers={"Authorization": auth,
                                                                  "Content-Type": "application/json"}, timeout=30)
            decided = answer.status_code, answer.content
        self.seen.append((token, decided[0]))
        h.answer(*decided)

    @property
    def unauthorized(self) -> int:
        return sum(1 for _, status in self.seen if status == 401)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Callable[[float | None], Front]]:
    """Starts the front before the emulator's API (access tokens living ``lifetime`` seconds, else 24 h), its
    tokens in a directory of the test's own, one request a second; stopped after the test."""
    started: list[Front] = []

    def start(lifetime: float | None = None) -> Front:
        options = None if lifetime is None else V3Options(access_token_lifetime=lifetime)
        emu = start_v3(monkeypatch, str(tmp_path / "tokens"), options=options)
        served = Front(emu)
        started.append(served)
        conn = json.loads(emu.v3_connection_json(oauth_store=str(tmp_path / "tokens"), max_retries=2,
                                                 backoff=0.01, requests_per_second=1))
        conn["host"] = served.server.url
        monkeypatch.setenv(V3_CONN_ENV, json.dumps(conn))
        return served

    yield start
    for served in started:
        served.stop()
        served.emu.stop()


@pytest.fixture
def front(serve: Callable[[float | None], Front]) -> Front:
    return serve(None)


def test_the_access_token_is_attached_after_the_limiter_s_wait(serve):
    """A wait in the limiter outlasts the token: the request carries a token refreshed after the wait, never the
    one taken before it (which the server would refuse)."""
    front = serve(8.0)  # long enough that a token refreshed after the wait reaches the server alive at any load
    hook = ConstantContactV3Hook()
    cid = next(iter(front.emu.v3.view.campaigns))
    hook.get_campaign(cid)
    first = hook.tokens.state()
    assert first is not None

    def outlast_the_token(seconds: float) -> None:  # the limiter's wait, longer than the token lives
        time.sleep(max(seconds, first.expires_at - time.time() + 0.2))

    hook.transport.sleep = outlast_the_token
    hook.get_campaign(cid)  # one request a second: this one waits in the limiter
    assert front.unauthorized == 0, f"a token aged in the limiter's queue was sent: {[s for _, s in front.seen]}"
    assert [token == first.access_token for token, _ in front.seen] == [True, False]


def test_a_401_is_retried_only_with_a_token_refreshed_after_it(front):
    """Another thread refreshes while a request is on its way; the server refuses every token it issued before
    its 401. The retry must carry a token from a refresh after that 401 (not the other thread's), so the
    request succeeds; and a second 401 after such a refresh fails, saying so."""
    hook = ConstantContactV3Hook()
    cid = next(iter(front.emu.v3.view.campaigns))
    hook.tokens.access_token()
    refused: set[str] = set()

    def decide(n: int, token: str) -> tuple[int, Any] | None:
        if n == 1:
            hook.tokens.refresh_now()  # another thread's refresh, before this request's 401
            refused.update(front.emu.v3.oauth.access_tokens())
        if token in refused:
            return 401, {"error_key": "unauthorized", "error_message": "Unauthorized"}
        return None

    front.decide = decide
    assert hook.get_campaign(cid)["campaign_id"] == cid
    tokens = [token for token, _ in front.seen]
    assert [status for _, status in front.seen] == [401, 200]
    assert tokens[1] not in refused, "the retry carried a token refreshed after the 401"

    front.decide = lambda n, token: (401, {"error_key": "unauthorized", "error_message": "Unauthorized"})
    with pytest.raises(ConstantContactAuthError, match="A freshly refreshed access token was refused too"):
        hook.get_campaign(cid)
    assert front.seen[-1][0] not in {token for token, _ in front.seen[:-1]}, "the last try had a new token"


@pytest.mark.parametrize("key", ["quota_exceeded", "QUOTA_EXCEEDED", "Quota_Exceeded"])
def test_the_daily_quota_is_recognised_in_any_letter_case(front, key):
    front.decide = lambda n, token: (429, {"error_key": key, "error_message": "Limit Exceeded"})
    with pytest.raises(ConstantContactQuotaSpentError, match="daily quota"):
        ConstantContactV3Hook().get_campaign(next(iter(front.emu.v3.view.campaigns)))
    assert len(front.seen) == 1, "a spent quota is not retried as throttling"
