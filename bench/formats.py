"""Output formats side by side: Parquet vs JSON lines vs CSV, Parquet's row-group size, and object stores
(S3, GCS, Azure Blob) vs local disk memory.

Every case is one task in a fresh child process (like section 3's memory child): the real tracking operator
pulls the whole report from the emulator (its own process, pages served from its cache) and writes it.
The child reports the records, the seconds, the stored bytes and its peak RSS above its RSS before the task
(imports done and, for an object store, the file system client made, before the baseline). pyarrow's first
use in a process (its first array: ~40 MB, once per process, whatever the data) is made before the baseline
too, and reported on its own. A second timing feeds the same pages straight to the writer, without HTTP, so
each format's own cost shows. The object stores are real servers in the parent process: moto's S3 (with the
provider's upload block, 8 MiB, and s3fs's default, 50 MiB, what the provider used before), fake-gcs-server
and Azurite.

    python3 scripts/run.py bench --only formats
"""

from __future__ import annotations

import json
import os
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
# The object stores' connection ids by URL scheme (the bucket is S3_BUCKET on each).
CONN_IDS = {"s3": S3_CONN_ID, "gs": "gcs_bench", "abfs": "azure_bench"}
# Row groups measured for the trade-off (the provider's is sinks.parquet.ROW_GROUP_ROWS).
ROW_GROUPS = (65_536, 32_768, 16_384, 8_192)


def add_arguments(parser: Any) -> None:
    parser.add_argument("--format-sizes", default="200000,1000000", help="records per report, formats section")
    parser.add_argument("--s3-records", type=int, default=1_000_000,
                        help="records for the object stores vs local memory cases")
    parser.add_argument("--row-group-records", type=int, default=1_000_000,
                        help="records for the Parquet row-group trade-off")


def smoke(args: Any) -> None:
    args.format_sizes, args.s3_records, args.row_group_records, args.format_smoke = "2000", 2000, 2000, True


# The smoke run proves each kind of case runs, once: one format (the writers have their own tests), one row-group
# size, one object store (moto's S3, in this process: fake-gcs-server and Azurite have the storage tests).
SMOKE_CASES = ("jsonl",)
SMOKE_STORES = ("local disk", "S3, 8 MiB upload blocks (provider)")


# ---- the child: one task in a fresh process -------------------------------------------------------------------
def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case (see :func:`_run_case`) and return its figures."""
    sys.path.insert(0, str(BENCH_DIR))
    from run import ALL_TIME, _status_mb

    import airflow_provider_cc.operators.tracking as tracking
    import airflow_provider_cc.sinks.commit as commit
    from airflow_provider_cc._compat import ObjectStoragePath

    out: dict[str, Any] = {}
    if spec["file_format"] == "parquet":
        out["pyarrow_first_use_mb"] = _warm_pyarrow(spec)
    scheme = spec["destination"].partition("://")[0]
    conn_id = CONN_IDS.get(scheme)
    if conn_id:
        commit.UPLOAD_BLOCK_SIZE = spec.get("block_size") or commit.UPLOAD_BLOCK_SIZE
        ObjectStoragePath(spec["destination"], conn_id=conn_id).fs.info(S3_BUCKET)  # the client, made once
    op = tracking.ConstantContactCampaignTrackingOperator(
        task_id="bench", campaign_id=spec["campaign_id"], report="sends", destination=spec["destination"],
        storage_conn_id=conn_id, file_format=spec["file_format"], compression=spec["compression"],
        parquet_compression=spec["parquet_compression"])
    Path("/proc/self/clear_refs").write_text("5")
    baseline = _status_mb("VmRSS")
    start = time.perf_counter()
    manifest = op.execute(dict(ALL_TIME))
    seconds = time.perf_counter() - start
    out.update({"records": manifest["records"], "seconds": seconds, "bytes": manifest["bytes"],
                "peak_rss_mb": _status_mb("VmHWM"), "before_task_mb": baseline})
    if manifest["uri"].startswith("file://") and spec.get("duckdb_read"):
        out["duckdb_read_s"] = _duckdb_read(manifest["uri"].removeprefix("file://"))
    if manifest["uri"].startswith("file://"):
        os.unlink(manifest["uri"].removeprefix("file://"))  # the next case writes its own
    if spec.get("writer_only"):
        out["writer_records_per_s"] = _writer_only(spec, manifest["records"])
    return out


def _warm_pyarrow(spec: dict[str, Any]) -> float:
    """pyarrow's first use in this process (one record through the Parquet writer, in memory); its RSS cost.

    Also sets the case's row-group size, when it has one, on the writer the operator uses.
    """
    import io
    from functools import partial

    sys.path.insert(0, str(BENCH_DIR))
    from run import _status_mb

    from airflow_provider_cc.reports import REPORTS, columns_for
    from airflow_provider_cc.sinks import options, parquet

    if spec.get("row_group_rows"):
        options.WRITERS["parquet"] = partial(parquet.write_parquet, row_group_rows=spec["row_group_rows"])
    before = _status_mb("VmRSS")
    record = {"activity_type": "EMAIL_SEND", "campaign_id": "1", "contact_id": "1", "email_address": "a@b.c",
              "send_date": "2024-01-01T00:00:00.000Z"}
    parquet.write_parquet(io.BytesIO(), [[record]], columns_for(REPORTS["sends"]))
    return _status_mb("VmRSS") - before


def _duckdb_read(path: str) -> float:
    """Seconds for DuckDB to scan the file's every column (best of 3)."""
    import duckdb

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        duckdb.sql(f"SELECT count(*), count(DISTINCT contact_id), max(send_date), max(length(email_address)) "
                   f"FROM read_parquet('{path}')").fetchall()
        best = min(best, time.perf_counter() - start)
    return best


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
def _run_child(spec: dict[str, Any], env: dict[str, str], warm: bool) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    from run import run_script

    proc = run_script(Path(__file__), "child", json.dumps(spec), env=env, warm=warm)
    if proc.returncode:
        raise RuntimeError(f"formats child failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _environment(url: str, stores: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the emulator's connection, and each object store's (scheme -> URL)."""
    sys.path.insert(0, str(BENCH_DIR))
    sys.path.insert(0, str(BENCH_DIR.parent))
    from run import connection

    from tests.storage import servers

    env = {**os.environ, "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT": connection(url, 0)}
    for scheme, store_url in (stores or {}).items():
        env[f"AIRFLOW_CONN_{CONN_IDS[scheme].upper()}"] = {
            "s3": lambda u: json.dumps({"conn_type": "aws", "login": "bench", "password": "bench",
                                        "extra": {"endpoint_url": u, "region_name": "us-east-1"}}),
            "gs": servers.gcs_connection, "abfs": servers.azure_connection}[scheme](store_url)
    return env


def _formats(sizes: list[int], s3_records: int, row_group_records: int, work: Path, smoke: bool,
             contacts: int = 1_000_000) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    from run import EmulatorProcess, minimal_loop

    results: dict[str, Any] = {"formats": {}, "s3": {}, "row_groups": {}}
    cid = "1100394165000"
    for size in sorted({*sizes, s3_records, row_group_records}):
        with EmulatorProcess("--campaigns", "1", "--contacts", str(contacts), "--activities", str(size),
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
                    results["formats"][f"{label}|{size}"] = _run_child(spec, env, smoke)
            if size == row_group_records:
                for rows in ROW_GROUPS if not smoke else ROW_GROUPS[:1]:
                    spec = {"campaign_id": cid, "destination": f"file://{work}/{NAME}-rg/", "file_format": "parquet",
                            "compression": None, "parquet_compression": "snappy", "row_group_rows": rows,
                            "duckdb_read": True}
                    print(f"  parquet, row groups of {rows:,}, {size:,} records", flush=True)
                    results["row_groups"][rows] = _run_child(spec, env, smoke)
            if size == s3_records:
                local = results["formats"].get(f"jsonl|{size}")  # the same task, already measured
                results["s3"] = _store_cases(cid, emu.url, work, smoke, local)
    return results


def _store_cases(cid: str, emulator_url: str, work: Path, smoke: bool,
                 local: dict[str, Any] | None) -> dict[str, Any]:
    """The jsonl task to local disk and to each object store, each store a real server started here."""
    import logging
    import urllib.request
    from contextlib import ExitStack

    import boto3
    from moto.server import ThreadedMotoServer

    sys.path.insert(0, str(BENCH_DIR.parent))
    from tests.storage import servers

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise
    with ExitStack() as stack:
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        urls = {"s3": f"http://{host}:{port}"}
        boto3.client("s3", endpoint_url=urls["s3"], aws_access_key_id="bench", aws_secret_access_key="bench",
                     region_name="us-east-1").create_bucket(Bucket=S3_BUCKET)
        if not smoke:
            urls.update({"gs": stack.enter_context(servers.fake_gcs_server()),
                         "abfs": stack.enter_context(servers.azurite())})
            urllib.request.urlopen(urllib.request.Request(
                f"{urls['gs']}/storage/v1/b?project=cc-bench", data=json.dumps({"name": S3_BUCKET}).encode(),
                headers={"Content-Type": "application/json"}, method="POST")).close()
            from azure.storage.blob import BlobServiceClient

            BlobServiceClient.from_connection_string(servers.azure_connection_string(urls["abfs"])).create_container(
                S3_BUCKET)
        env = _environment(emulator_url, urls)
        base = {"campaign_id": cid, "file_format": "jsonl", "compression": None, "parquet_compression": "snappy"}
        cases = {"local disk": {"destination": f"file://{work}/{NAME}-s3/"},
                 "S3, 8 MiB upload blocks (provider)": {"destination": f"s3://{S3_BUCKET}/cc/",
                                                        "block_size": 8 * 2**20},
                 "S3, 50 MiB blocks (s3fs default, before)": {"destination": f"s3://{S3_BUCKET}/cc/",
                                                             "block_size": 50 * 2**20},
                 "GCS, 8 MiB upload blocks (provider)": {"destination": f"gs://{S3_BUCKET}/cc/"},
                 "Azure Blob, 8 MiB blocks (provider)": {"destination": f"abfs://{S3_BUCKET}/cc/"}}
        out: dict[str, Any] = {}
        for label, case in cases.items():
            if smoke and label not in SMOKE_STORES:
                continue
            if label == "local disk" and local is not None:
                out[label] = local
                continue
            print(f"  {label}", flush=True)
            out[label] = _run_child({**base, **case}, env, smoke)
        return out


def section(args: Any, work: Path) -> str:
    sizes = [int(s) for s in args.format_sizes.split(",") if s]
    results = _formats(sizes, args.s3_records, args.row_group_records, work, getattr(args, "format_smoke", False),
                       getattr(args, "contacts", 1_000_000))
    from airflow_provider_cc.sinks.parquet import ROW_GROUP_ROWS

    lines = [
        "## Output formats: Parquet vs JSON lines vs CSV", "",
        "One task per case in a fresh process: the tracking operator pulls a `sends` report of N records from the "
        "emulator (page cache warm) and writes it to local disk. *records/s* is the whole task (HTTP, decoding, "
        "window filter, writing); *writer records/s* feeds the same kind of pages to the writer alone. *Peak "
        "growth* is the task's peak RSS minus its RSS before the task; for Parquet, pyarrow's first use in the "
        "process (its import and first array) is made before that baseline and shown on its own.", "",
        "| format | records | records/s (task) | writer records/s | bytes on disk | bytes/record | "
        "peak RSS (MB) | peak growth (MB) | pyarrow import + first use (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in results["formats"].items():
        label, size = key.split("|")
        first = f"{r['pyarrow_first_use_mb']:+.1f}" if "pyarrow_first_use_mb" in r else ""
        lines.append(f"| {label} | {int(size):,} | {r['records'] / r['seconds']:,.0f} | "
                     f"{r['writer_records_per_s']:,.0f} | {r['bytes']:,} | {r['bytes'] / max(r['records'], 1):.1f} | "
                     f"{r['peak_rss_mb']:.1f} | {r['peak_rss_mb'] - r['before_task_mb']:+.1f} | {first} |")
    lines += ["", "JSON lines is the baseline: every format streams page by page, so the peak growth must not grow "
                  f"with the report (compare the sizes). Parquet holds one row group ({ROW_GROUP_ROWS:,} rows, as "
                  "Arrow columns) before writing it. pyarrow's import and first use are a fixed cost of the library "
                  "in each process (its first array), whatever the data.", ""]
    if results["row_groups"]:
        lines += ["## Parquet row-group size: memory, file size and DuckDB read speed", "",
                  "The same Parquet (snappy) task at each row-group size; *DuckDB scan* reads every column of the "
                  "file (`count(*)`, `count(DISTINCT contact_id)`, `max(send_date)`, `max(length(email_address))`; "
                  f"best of 3). The provider writes row groups of {ROW_GROUP_ROWS:,} rows.", "",
                  "| rows per row group | records | peak growth (MB) | bytes on disk | bytes/record | "
                  "records/s (task) | DuckDB scan (s) |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for rows, r in results["row_groups"].items():
            lines.append(f"| {rows:,} | {r['records']:,} | {r['peak_rss_mb'] - r['before_task_mb']:+.1f} | "
                         f"{r['bytes']:,} | {r['bytes'] / max(r['records'], 1):.1f} | "
                         f"{r['records'] / r['seconds']:,.0f} | {r['duckdb_read_s']:.3f} |")
        lines.append("")
    if results["s3"]:
        first = next(iter(results["s3"].values()))
        lines += ["## Memory: object stores (S3, GCS, Azure Blob) vs local disk", "",
                  f"The same task (jsonl, {first['records']:,} records) writing to local disk and to each object "
                  "store through `ObjectStoragePath` and the store's Airflow connection, each a real server on "
                  "127.0.0.1 (moto's S3, fake-gcs-server, Azurite); the file system client is made before the "
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
