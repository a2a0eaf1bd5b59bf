"""No server outlives the test run that started it: a run killed mid-test (by a timeout's signal, or an xdist
worker crashing) leaves no server process behind (tests/reaper.py: process groups and their watchdog)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import suppress
from typing import TYPE_CHECKING

import pytest

from tests import reaper
from tests.conftest import ROOT

if TYPE_CHECKING:
    from pathlib import Path

# The test run that is killed: it starts real servers (redis-server, fake-gcs-server) and a group whose child
# ignores SIGTERM, writes their process groups down, then kills its own process (or xdist worker) mid-test.
INNER = '''
import json, os, signal, subprocess, sys
from pathlib import Path

from tests import reaper
from tests.redis_server import RedisServer
from tests.storage import servers

STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('ready', flush=True); time.sleep(600)"], stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print("ready", flush=True)
time.sleep(600)
"""


def test_killed_mid_test():
    redis = RedisServer()
    with servers.fake_gcs_server():
        stubborn = reaper.spawn([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
        assert stubborn.stdout.readline().strip() == "ready"
        assert redis.client().ping()
        Path(os.environ["CC_REAPER_GROUPS"]).write_text(json.dumps(reaper.groups()))
        os.kill(os.getpid(), getattr(signal, os.environ["CC_REAPER_SIGNAL"]))
        signal.pause()
'''


@pytest.mark.parametrize(("signal_name", "workers"), [("SIGKILL", "0"), ("SIGTERM", "1")],
                         ids=["pytest killed", "xdist worker killed"])
def test_a_test_run_killed_mid_test_leaves_no_server_running(tmp_path: Path, signal_name: str, workers: str):
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER)
    written = tmp_path / "groups.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CC_REAPER_GROUPS": str(written),
           "CC_REAPER_SIGNAL": signal_name}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", workers,
                          "--rootdir", str(tmp_path), "-c", os.devnull, str(inner)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert written.exists(), f"the inner test did not get to start its servers:\n{run.stdout[-3000:]}{run.stderr}"
    groups = json.loads(written.read_text())
    assert len(groups) == 3, groups  # redis-server, fake-gcs-server, the stubborn group
    assert run.returncode != 0, "the inner run was killed"
    left = reaper.wait_gone(groups, 120)  # SIGTERM, then SIGKILL after the grace period
    try:
        assert left == [], {pgid: reaper.group_members(pgid) for pgid in left}
    finally:
        for pgid in left:  # a failure leaves nothing behind either
            with suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
