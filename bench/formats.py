"""Output formats side by side: Parquet vs JSON lines vs CSV, and S3 vs local disk memory.

Every case is one task in a fresh child process (like section 3's memory child): the real tracking operator
pulls the whole report from the emulator (its own process, pages served from its cache) and writes it.
The child reports the records, the seconds, the stored bytes and its peak RSS above its RSS before the task
(imports done and, for S3, the file system client made, before the baseline). A second timing feeds the same
pages straight to the writer, without HTTP, so each format's own cost shows. For S3 the object store is
moto's server in the parent process; the child is measured with the provider's upload block (8 MiB) and with
s3fs's default (50 MiB, what the provider used before), beside local disk.

    python3 scripts/run.py bench --only formats
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "formats"
BENCH_DIR = Path(__file__).resolve().parent
# (label, file_format, compression, parquet_compression)
CASES: tuple[tuple[str, str, str | None, str], ...] = (
    ("jsonl", "jsonl", None, "snappy"),
    ("jsonl + gzip", "jsonl", "gzip", "snappy"),
    ("csv", "csv", None, "snappy"),
    ("parquet (snappy)", "parquet", None, "snappy"),
    ("parquet (zstd)", "parquet", None, "zstd"),
)
S3_CONN_ID = "aws_bench"
S3_BUCKET = "cc-bench"


def add_arguments(parser: Any) -> None:
    parser.add_argument("--format-sizes", default="200000,1000000", help="records per report, formats section")
    parser.add_argument("--s3-records", type=int, default=1_000_000, help="records for the S3 vs local memory case")


def smoke(args: Any) -> None:
    args.format_sizes, args.s3_records, args.format_smoke = "2000", 2000, True


SMOKE_CASES = ("jsonl", "csv", "parquet (snappy)")


# ---- the child: one task in a fresh process -------------------------------------------------------------------
def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case (see :func:`_run_case`) and return its figures."""
    sys.path.insert(0, str(BENCH_DIR))
    from run import ALL_TIME, _status_mb

    import airflow_provider_cc.operators.tracking as tracking
    import airflow_provider_cc.sinks.commit as commit
    from airflow_provider_cc._compat import ObjectStoragePath

    if spec["file_format"] == "parquet":
        import pyarrow.parquet  # noqa: F401  (imports before the baseline)
    if spec["destination"].startswith("s3://"):
        commit.UPLOAD_BLOCK_SIZE = spec["block_size"]
        ObjectStoragePath(spec["destination"], conn_id=S3_CONN_ID).fs.info(S3_BUCKET)  # the client, made once
    op = tracking.ConstantContactCampaignTrackingOperator(
        task_id="bench", campaign_id=spec["campaign_id"], report="sends", destination=spec["destination"],
        storage_conn_id=S3_CONN_ID if spec["destination"].startswith("s3://") else None,
        file_format=spec["file_format"], compression=spec["compression"],
        parquet_compression=spec["parquet_compression"])
    Path("/proc/self/clear_refs").write_text("5")
    baseline = _status_mb("VmRSS")
    start = time.perf_counter()
    manifest = op.execute(dict(ALL_TIME))
    seconds = time.perf_counter() - start
    out = {"records": manifest["records"], "seconds": seconds, "bytes": manifest["bytes"],
           "peak_rss_mb": _status_mb("VmHWM"), "before_task_mb": baseline}
    if manifest["uri"].startswith("file://"):
        os.unlink(manifest["uri"].removeprefix("file://"))  # the next case writes its own
    if spec.get("writer_only"):
        out["writer_records_per_s"] = _writer_only(spec, manifest["records"])
    return out


def _writer_only(spec: dict[str, Any], records: int) -> float:
    """Records/s of the writer alone: the report's first pages, cycled up to ``records``, to a local file."""
    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.emulator.data import DataConfig, Dataset
    from airflow_provider_cc.reports import REPORTS, columns_for
    from airflow_provider_cc.sinks import write_records

    data = Dataset(DataConfig(campaigns=1, contacts=1_000_000, activities=records))
    view = data.campaign_view(next(iter(data.campaigns.values())), REPORTS["sends"])
    pages = []
    for first in range(0, min(records, 20 * 500), 500):
        page = data.records(view, first, min(first + 500, records))
        for record in page:
            record["campaign_id"] = str(record["campaign_id"])  # as the provider emits them
        pages.append(page)

    def batches() -> Any:
        sent = 0
        while sent < records:
            for page in pages:
                if sent >= records:
                    return
                yield page[: records - sent]
                sent += min(len(page), records - sent)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        written = write_records(batches(), ObjectStoragePath(f"file://{tmp}/w"), file_format=spec["file_format"],
                                compression=spec["compression"], columns=columns_for(REPORTS["sends"]),
                                parquet_compression=spec["parquet_compression"])
        return written.records / (time.perf_counter() - start)


# ---- the parent ----------------------------------------------------------------------------------------------
def _run_child(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "child", json.dumps(spec)], env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"formats child failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _environment(url: str, s3_url: str | None = None) -> dict[str, str]:
    sys.path.insert(0, str(BENCH_DIR))
    from run import connection

    env = {**os.environ, "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT": connection(url, 0)}
    if s3_url:
        env[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "aws", "login": "bench", "password": "bench",
             "extra": {"endpoint_url": s3_url, "region_name": "us-east-1"}})
    return env


def _formats(sizes: list[int], s3_records: int, work: Path, smoke: bool) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    from run import EmulatorProcess, minimal_loop

    results: dict[str, Any] = {"formats": {}, "s3": {}}
    cid = "1100394165000"
    for size in sorted({*sizes, s3_records}):
        with EmulatorProcess("--campaigns", "1", "--contacts", "1000000", "--activities", str(size),
                             "--cache-pages") as emu:
            minimal_loop(emu.url, cid, work / "warm.jsonl")  # fills the emulator's page cache
            env = _environment(emu.url)
            if size in sizes:
                for label, file_format, compression, parquet_compression in CASES:
                    if smoke and label not in SMOKE_CASES:
                        continue
                    spec = {"campaign_id": cid, "destination": f"file://{work}/{NAME}/", "file_format": file_format,
                            "compression": compression, "parquet_compression": parquet_compression,
                            "writer_only": True}
                    print(f"  {label}, {size:,} records", flush=True)
                    results["formats"][f"{label}|{size}"] = _run_child(spec, env)
            if size == s3_records:
                local = results["formats"].get(f"jsonl|{size}")  # the same task, already measured
                results["s3"] = _s3_cases(cid, env, work, smoke, local)
    return results


def _s3_cases(cid: str, env: dict[str, str], work: Path, smoke: bool,
              local: dict[str, Any] | None) -> dict[str, Any]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=url, aws_access_key_id="bench", aws_secret_access_key="bench",
                     region_name="us-east-1").create_bucket(Bucket=S3_BUCKET)
        env = {**env, **{k: v for k, v in _environment("", url).items() if k.startswith("AIRFLOW_CONN_AWS")}}
        base = {"campaign_id": cid, "file_format": "jsonl", "compression": None, "parquet_compression": "snappy"}
        cases = {"local disk": {"destination": f"file://{work}/{NAME}-s3/", "block_size": 0},
                 "S3, 8 MiB upload blocks (provider)": {"destination": f"s3://{S3_BUCKET}/cc/",
                                                        "block_size": 8 * 2**20},
                 "S3, 50 MiB blocks (s3fs default, before)": {"destination": f"s3://{S3_BUCKET}/cc/",
                                                             "block_size": 50 * 2**20}}
        out: dict[str, Any] = {}
        for label, case in cases.items():
            if smoke and "50 MiB" in label:
                continue
            if label == "local disk" and local is not None:
                out[label] = local
                continue
            print(f"  {label}", flush=True)
            out[label] = _run_child({**base, **case}, env)
        return out
    finally:
        server.stop()


def section(args: Any, work: Path) -> str:
    sizes = [int(s) for s in args.format_sizes.split(",") if s]
    results = _formats(sizes, args.s3_records, work, getattr(args, "format_smoke", False))
    lines = [
        "## Output formats: Parquet vs JSON lines vs CSV", "",
        "One task per case in a fresh process: the tracking operator pulls a `sends` report of N records from the "
        "emulator (page cache warm) and writes it to local disk. *records/s* is the whole task (HTTP, decoding, "
        "window filter, writing); *writer records/s* feeds the same kind of pages to the writer alone. *Peak "
        "growth* is the task's peak RSS minus its RSS before the task.", "",
        "| format | records | records/s (task) | writer records/s | bytes on disk | bytes/record | "
        "peak RSS (MB) | peak growth (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in results["formats"].items():
        label, size = key.split("|")
        lines.append(f"| {label} | {int(size):,} | {r['records'] / r['seconds']:,.0f} | "
                     f"{r['writer_records_per_s']:,.0f} | {r['bytes']:,} | {r['bytes'] / max(r['records'], 1):.1f} | "
                     f"{r['peak_rss_mb']:.1f} | {r['peak_rss_mb'] - r['before_task_mb']:+.1f} |")
    lines += ["", "JSON lines is the baseline: every format streams page by page, so the peak growth must not grow "
                  "with the report (compare the sizes). Parquet holds one row group (65,536 rows, as Arrow "
                  "columns) before writing it.", ""]
    if results["s3"]:
        first = next(iter(results["s3"].values()))
        lines += ["## Memory: S3 (moto's server) vs local disk", "",
                  f"The same task (jsonl, {first['records']:,} records) writing to local disk and to S3 through "
                  "`ObjectStoragePath` and an aws connection; the S3 file system client is made before the "
                  "baseline, so the growth is the upload path.", "",
                  "| destination | records | records/s (task) | peak RSS (MB) | peak growth (MB) |",
                  "|---|---:|---:|---:|---:|"]
        for label, r in results["s3"].items():
            lines.append(f"| {label} | {r['records']:,} | {r['records'] / r['seconds']:,.0f} | "
                         f"{r['peak_rss_mb']:.1f} | {r['peak_rss_mb'] - r['before_task_mb']:+.1f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        sys.exit(0)
    print(__doc__)
