"""``airflow`` commands for tests, several in one interpreter: each new interpreter spends about 5 CPU seconds
importing Airflow before its command's first line. Each command is parsed and run as ``airflow``'s own main
does it, in the order given; the first that fails ends the run."""

from __future__ import annotations

import json
import subprocess
import sys

# What airflow.__main__.main does for one command, for each command given.
SEQUENCE = """
import json, sys
from airflow.cli import cli_parser
from airflow.configuration import write_default_airflow_configuration_if_needed
write_default_airflow_configuration_if_needed()
parser = cli_parser.get_parser()
for argv in json.loads(sys.argv[1]):
    print("== airflow", *argv, flush=True)
    args = parser.parse_args(argv)
    args.func(args)
"""


def run_each(*commands: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``airflow`` with each argument list in turn, in one new interpreter with ``env``; fail the test with
    their output if one fails."""
    proc = subprocess.run([sys.executable, "-c", SEQUENCE, json.dumps(commands)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"airflow {commands}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc
