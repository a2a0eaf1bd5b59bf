"""OpenLineage for the operators: the API report they read and the files they wrote, as datasets.

The operators record what they did (``self.lineage_inputs``, ``self.files_written``; see
``OpenLineageMixin``). This module turns those records into what the OpenLineage provider expects from an
operator's ``get_openlineage_facets_on_*`` methods. OpenLineage is imported only inside those methods, so
without ``apache-airflow-providers-openlineage`` nothing here is imported and nothing changes.

Dataset names follow the OpenLineage naming spec (namespace = ``scheme://authority`` of the data source,
name = the path within it): the report is ``https://api.constantcontact.com`` +
``/v2/emailmarketing/campaigns/{id}/tracking/{report}``; a local file is ``file`` + its absolute path; an
S3 object ``s3://{bucket}`` + its key; a GCS object ``gs://{bucket}`` + its key; an Azure object
``abfss://{container}@{account}.dfs.core.windows.net`` + its key.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from airflow_provider_cc import reports
from airflow_provider_cc._compat import add_hook_input
from airflow_provider_cc.dimensions import dimension_of
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.schemas import report_for
from airflow_provider_cc.stores import LOCAL, store_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)


def file_dataset_name(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of a written object's plain URI (no Airflow conn id in it).

    >>> file_dataset_name("s3://lake/cc/opens.jsonl")
    ('s3://lake', 'cc/opens.jsonl')
    >>> file_dataset_name("file:///data/cc/opens.jsonl")
    ('file', '/data/cc/opens.jsonl')
    """
    # Split by hand: a plain URI is not URL-encoded, so '#' and '?' are part of the key, not a fragment or query.
    scheme, separator, rest = uri.partition("://")
    if not separator:  # an absolute local path
        return "file", uri
    authority, _, key = rest.partition("/")
    store = store_of(scheme)
    if store is not None and store.namespace == "abfss":  # container@account.dfs.core.windows.net names the data
        return f"abfss://{authority.lower()}", key
    host = authority.rpartition("@")[2].lower()  # a conn id (or credentials) never names the data source
    if store is not None and store.commit == LOCAL:  # a host names a remote file system: file://{host}
        return (f"file://{host}" if host else "file"), f"/{key}"
    if store is not None:  # an object store: the bucket (container) and the key without a leading "/"
        return f"{store.namespace}://{host}", key
    return f"{scheme.lower()}://{host}", f"/{key}"


def api_input(url: str) -> dict[str, str]:
    """A ``lineage_inputs`` entry for the URL of an API resource (no query string)."""
    namespace, name = api_dataset_name(url, "")
    return {"namespace": namespace, "name": name}


def report_hook_input(hook: Any, url: str) -> None:
    """Report an API resource a hook reads to Airflow's hook lineage collector, as the URI of the input dataset
    the operators' OpenLineage events name (``{namespace}{name}`` of :func:`api_dataset_name`: no credentials,
    no query string). Lineage never fails a read: a collector that refuses the URI is logged and ignored.

    :param hook: the hook reading (the collector's context).
    :param url: the resource's URL.
    """
    namespace, name = api_dataset_name(url, "")
    try:
        add_hook_input(hook, f"{namespace}{name}")
    except Exception as exc:  # Airflow's asset checks, or a collector plugin's own failure
        log.debug("hook lineage not recorded for %s%s: %s", namespace, name, type(exc).__name__)


def api_dataset_name(base_url: str, path: str) -> tuple[str, str]:
    """``(namespace, name)`` of an API resource: ``scheme://host[:port]`` and the full path.

    Any path in ``base_url`` is moved into the name; credentials and query strings never enter either.
    """
    parts = urlsplit(base_url)
    path = path.split("?", 1)[0]
    name = parts.path.rstrip("/") + (path if not path or path.startswith("/") else f"/{path}")
    return f"{parts.scheme.lower()}://{_authority(parts)}", name or "/"


def _authority(parts: SplitResult) -> str:
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def schema_fields(report_name: str, api: str = reports.V2) -> tuple[tuple[str, str], ...]:
    """``(column, type)`` of a report's output files (the catalogue's typed schema of that API version), in
    column order; empty for an unknown report.

    :param report_name: the schema's name (:data:`~airflow_provider_cc.schemas.SCHEMAS`: v2 ``all``, v3
        ``activity`` included), or a dimension's (``campaigns``...).
    :param api: ``v2`` or ``v3``.
    """
    dimension = dimension_of(report_name, api)
    if dimension is not None:
        return tuple((column.name, column.type) for column in dimension.schema)
    try:
        report = report_for(report_name, api)
    except ConstantContactInputError:
        return ()
    return tuple((column.name, column.type) for column in reports.schema_of(report))


def file_schema(entry: Mapping[str, Any]) -> tuple[str, str]:
    """``(schema name, api)`` of a ``files_written`` entry: its ``report`` of its ``api`` (v2 when absent); a v3
    contact file holds the contact activity report, whichever report it was asked for.

    >>> file_schema({"report": "opens", "contact_id": "9f7e6d5c-0000-4000-8000-000000000000", "api": "v3"})
    ('activity', 'v3')
    """
    api = entry.get("api") or reports.V2
    if entry.get("dimension"):
        return str(entry["dimension"]), api
    if api == reports.V3 and "contact_id" in entry and "campaign_activity_id" not in entry:
        return reports.V3_CONTACT_ACTIVITY.name, api
    return entry.get("report", ""), api


# Beyond this many files, a task's outputs are one dataset per report folder (an event of one dataset per
# file of a year's history load was 6 MB, 5,872 outputs, past what OpenLineage backends accept).
MAX_LINEAGE_FILES = 100
_PARTITIONS = ("campaign_id=", "contact_id=")


def report_folder(name: str) -> str:
    """The report folder of a file's dataset name: the path before its first ``campaign_id=``/``contact_id=``
    folder (``cc/campaign/opens``), else the file's own folder.

    >>> report_folder("cc/campaign/opens/campaign_id=11/20240101T000000Z_20240102T000000Z.jsonl")
    'cc/campaign/opens'
    """
    parts = name.split("/")
    for index, part in enumerate(parts):
        if part.startswith(_PARTITIONS):
            return "/".join(parts[:index])
    return "/".join(parts[:-1])


_Dataset = tuple[tuple[str, str], int, int, frozenset[tuple[str, str]]]


def _file_datasets(files: Iterable[Mapping[str, Any]], max_files: int
                   ) -> list[tuple[str, str, tuple[str, str], int, int, frozenset[tuple[str, str]]]]:
    """``(namespace, name, (schema, api), rowCount, size, {(campaign_id, report)})`` per written file, or per
    report folder (the counts summed) when there are more than ``max_files`` files."""
    per_file: dict[tuple[str, str], _Dataset] = {}
    for entry in files:
        campaign, report = entry.get("campaign_id"), entry.get("report")
        held = frozenset({(str(campaign), str(report))}) if campaign and report else frozenset()
        per_file[file_dataset_name(entry["uri"])] = (file_schema(entry), entry.get("records") or 0,
                                                     entry.get("bytes") or 0, held)
    if len(per_file) <= max_files:
        return [(ns, name, *values) for (ns, name), values in per_file.items()]
    folders: dict[tuple[str, str], _Dataset] = {}
    for (namespace, name), (schema, records, size, held) in per_file.items():
        key = (namespace, report_folder(name))
        _, total_records, total_size, all_held = folders.get(key, (schema, 0, 0, frozenset()))
        folders[key] = (schema, total_records + records, total_size + size, all_held | held)
    return [(ns, name, *values) for (ns, name), values in folders.items()]


def quality_facet(results: Iterable[Mapping[str, Any]]) -> Any:
    """A ``DataQualityAssertionsDatasetFacet`` of completeness results (``None`` for none): one assertion per
    (campaign, report), ``records_match_api_count``, on the column ``campaign_id={id}/{report}``."""
    from openlineage.client.generated.data_quality_assertions_dataset import (
        Assertion,
        DataQualityAssertionsDatasetFacet,
    )

    assertions = [Assertion(assertion="records_match_api_count", success=bool(r["exact"]),
                            column=f"campaign_id={r['campaign_id']}/{r['report']}") for r in results]
    return DataQualityAssertionsDatasetFacet(assertions=assertions) if assertions else None


def operator_lineage(inputs: Iterable[Mapping[str, Any]], files: Iterable[Mapping[str, Any]], *,
                     max_files: int | None = None, quality: Iterable[Mapping[str, Any]] = ()) -> Any:
    """An ``OperatorLineage``: each API input, and each written file with schema and statistics facets.

    Up to ``max_files`` files (:data:`MAX_LINEAGE_FILES`) each file is one output dataset; beyond that, each
    report folder (``{root}campaign/{report}``, see :func:`report_folder`) is one, with the summed records
    and bytes of its files, so an event stays small however many files a task writes.

    :param inputs: ``{"namespace": API base URL, "name": API path}`` per report read.
    :param files: entries of ``files_written`` (``uri``, ``records``, ``bytes``, ``report``, ``api``...); each
        file's schema facet is its report's on its API version (:func:`file_schema`).
    :param max_files: the cap (default :data:`MAX_LINEAGE_FILES`).
    :param quality: the account run's completeness results (``campaign_id``, ``report``, ``exact``...): each
        output dataset holding files of a checked (campaign, report) gets its assertions
        (``dataQualityAssertions``).
    """
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    read: dict[tuple[str, str], Any] = {}
    for item in inputs:
        key = api_dataset_name(item["namespace"], item["name"])
        read.setdefault(key, InputDataset(namespace=key[0], name=key[1]))
    checked = {(str(r["campaign_id"]), str(r["report"])): r for r in quality}
    written = []
    for namespace, name, (schema, api), records, size, held in _file_datasets(
            files, MAX_LINEAGE_FILES if max_files is None else max_files):
        fields = schema_fields(schema, api)
        facets: dict[str, Any] = {}
        if fields:
            facets["schema"] = SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in fields])
        assertions = quality_facet(checked[key] for key in sorted(held) if key in checked) if checked else None
        if assertions is not None:
            facets["dataQualityAssertions"] = assertions
        stats = OutputStatisticsOutputDatasetFacet(rowCount=records, size=size)
        written.append(OutputDataset(namespace=namespace, name=name, facets=facets,
                                     outputFacets={"outputStatistics": stats}))
    return OperatorLineage(inputs=list(read.values()), outputs=written)


class OpenLineageMixin:
    """The OpenLineage operator methods, for operators that record ``lineage_inputs`` and ``files_written``.

    ``execute`` sets ``self.lineage_inputs`` (the API resources read) and appends each committed file to
    ``self.files_written``; these methods only read them. Without a ``destination`` (XCom mode) only the
    input is reported. START carries what is known before ``execute`` (usually nothing); COMPLETE carries
    the input and every file; FAILED carries the input and the files committed before the failure.
    """

    def _openlineage(self) -> Any:
        return operator_lineage(getattr(self, "lineage_inputs", None) or (),
                                getattr(self, "files_written", None) or (),
                                quality=getattr(self, "lineage_quality", None) or ())

    def get_openlineage_facets_on_start(self) -> Any:
        """Lineage known before ``execute``."""
        return self._openlineage()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The report read and the files written."""
        return self._openlineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """The report read and the files committed before the failure."""
        return self._openlineage()
