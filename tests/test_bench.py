"""A smoke run of the benchmark script at tiny sizes, so it cannot rot. No speed target is asserted."""

from __future__ import annotations

import re
import subprocess
import sys

from tests import reaper
from tests.conftest import ROOT


def test_benchmark_smoke_run_writes_every_section(tmp_path):
    report = tmp_path / "benchmarks.md"
    # The benchmark and the emulators it starts form one process group: a killed test leaves none of them.
    proc = reaper.spawn([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--output", str(report)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=1800)
    finally:
        reaper.stop(proc)
    assert proc.returncode == 0, out[-2000:] + err[-3000:]
    text = report.read_text()
    for heading in ("## 1. Unthrottled", "## 2. Rate-limited", "## 3. Memory", "## 4. The emulator's own ceiling",
                    "## v3: token calls a day", "## Analytics: what the dimensions",
                    "## One sent campaign: one task, or one task per report"):
        assert heading in text
    for way in ("provider operator (a)", "minimal requests loop (b)", "HttpOperator + pagination_function (c)"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {way} | 3,000 |"))
        assert float(re.findall(r"\| ([\d,]+) \|", row)[1].replace(",", "")) > 0
    rate_row = next(line for line in text.splitlines() if line.startswith("| provider operator (a) | 3 |"))
    assert rate_row.endswith("| 0 |"), "the throttled provider received no 403"
    assert "| file | 3,000 |" in text and "| limit=500 (generating) |" in text
    analytics = [line for line in text.splitlines() if line.startswith(("| v2 | history |", "| v3 | history |"))]
    assert len(analytics) == 2 and all(int(row.split("|")[4].replace(",", "")) > 0 for row in analytics), analytics
    sent = {row.split("|")[1].strip(): [int(c.replace(",", "")) for c in row.split("|")[2:6]]
            for row in text.splitlines() if row.startswith(("| v2 | ", "| v3 | ")) and row.count("|") == 6}
    # One task costs no less than the lower bound and at most the estimate it logged; beside six tasks, at most
    # its one campaign request more (which tells it the reports without records, which then cost nothing).
    assert set(sent) == {"v2", "v3"} and all(bound <= one <= min(estimate, mapped + 1)
                                              for mapped, one, estimate, bound in sent.values()), sent
