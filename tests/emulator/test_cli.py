"""``python -m airflow_provider_cc.emulator``: what it prints on start, and a busy port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from tests import reaper

CLI = [sys.executable, "-m", "airflow_provider_cc.emulator"]


def test_start_prints_the_url_first_then_a_connection_line_that_works_pasted_into_a_shell(monkeypatch):
    key, token = "k'ey $HOME", 't"o k'  # quoted for the shell: neither expands nor splits
    proc = reaper.spawn([*CLI, "--port", "0", "--campaigns", "1", "--qps", "0", "--api-key", key,
                         "--token", token], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = proc.stdout.readline()
        url = first.split(" on ")[1].split()[0]  # what bench/run.py's EmulatorProcess parses
        assert url.startswith("http://127.0.0.1:") and url != "http://127.0.0.1:0"
        lines = [proc.stdout.readline() for _ in range(2)]
        pasted = next(line for line in lines if "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT=" in line)

        shell = subprocess.run(["bash", "-c", pasted + "printenv AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"],
                               capture_output=True, text=True, timeout=30, check=True)
        assert json.loads(shell.stdout) == {"conn_type": "constant_contact", "host": url, "password": token,
                                            "login": key, "port": int(url.rsplit(":", 1)[1])}

        monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", shell.stdout.strip())
        campaigns = list(ConstantContactHook().iter_campaigns(status="SENT"))
        assert [c["status"] for c in campaigns] == ["SENT"], "the pasted connection reaches the emulator"
    finally:
        reaper.stop(proc)


def test_a_busy_port_is_one_line_naming_the_port_flag_and_exit_code_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([*CLI, "--port", str(port)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0] and "--port" in lines[0]


def test_the_v3_switch_prints_a_v3_connection_line_that_pulls(monkeypatch, tmp_path):
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

    proc = reaper.spawn([*CLI, "--port", "0", "--campaigns", "1", "--api", "v3"], stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        pasted = next(line for line in lines if "AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT=" in line)
        shell = subprocess.run(["bash", "-c", pasted + "printenv AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT"],
                               capture_output=True, text=True, timeout=30, check=True)
        connection = json.loads(shell.stdout)
        assert connection["conn_type"] == "constant_contact_v3" and connection["extra"]["refresh_token"]
        connection["extra"]["oauth_store"] = str(tmp_path)
        monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT", json.dumps(connection))
        assert [c["current_status"] for c in ConstantContactV3Hook().iter_campaigns()].count("Done") == 1
    finally:
        reaper.stop(proc)
