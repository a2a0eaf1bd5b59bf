"""``python -m airflow_provider_cc.emulator``: what it prints on start, and a busy port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc.hooks.constant_contact import ConstantContactHook

if TYPE_CHECKING:
    from collections.abc import Iterator

CLI = [sys.executable, "-m", "airflow_provider_cc.emulator"]


@pytest.fixture
def cli() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([*CLI, "--port", "0", "--campaigns", "1", "--qps", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def test_start_prints_the_url_first_then_a_connection_line_that_works_pasted_into_a_shell(cli, monkeypatch):
    first = cli.stdout.readline()
    url = first.split(" on ")[1].split()[0]  # what bench/run.py's EmulatorProcess parses
    assert url.startswith("http://127.0.0.1:") and url != "http://127.0.0.1:0"
    lines = [cli.stdout.readline() for _ in range(2)]
    pasted = next(line for line in lines if "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT=" in line)

    shell = subprocess.run(["bash", "-c", pasted + "printenv AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"],
                           capture_output=True, text=True, timeout=10, check=True)
    conn = json.loads(shell.stdout)
    assert conn == {"conn_type": "constant_contact", "host": url, "password": "emulator-access-token",
                    "extra": {"api_key": "emulator-api-key"}}

    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", shell.stdout.strip())
    hook = ConstantContactHook()
    assert [c["status"] for c in hook.iter_campaigns(status="SENT")] == ["SENT"], "the pasted connection works"


def test_the_connection_line_carries_the_key_and_token_it_was_started_with():
    proc = subprocess.Popen([*CLI, "--port", "0", "--api-key", "k'ey", "--token", "t o k"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    pasted = next(line for line in lines if "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT=" in line)
    shell = subprocess.run(["bash", "-c", pasted + "printenv AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"],
                           capture_output=True, text=True, timeout=10, check=True)
    conn = json.loads(shell.stdout)
    assert (conn["password"], conn["extra"]["api_key"]) == ("t o k", "k'ey"), "quoted for the shell"


def test_a_busy_port_is_one_line_naming_the_port_flag_and_exit_code_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([*CLI, "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0] and "--port" in lines[0]
