"""The storage the provider writes to: which protocols, how a file is committed there, how it is named.

One table (:data:`STORES`) says, per fsspec protocol of an ``ObjectStoragePath``, how a file is committed
(:data:`LOCAL`: a temporary file beside the target and ``os.replace``; :data:`OBJECT_STORE`: one object
write, atomic by itself) and the OpenLineage namespace scheme of what lands there. The commit
(``sinks.commit``), the destination checks (``destinations``) and lineage (``lineage``) all read it, so
they agree on every protocol.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_cc.exceptions import ConstantContactInputError

if TYPE_CHECKING:
    from airflow_provider_cc._compat import ObjectStoragePath

LOCAL, OBJECT_STORE = "local", "object store"


@dataclass(frozen=True)
class Store:
    """How the provider writes to one protocol.

    :param commit: :data:`LOCAL` or :data:`OBJECT_STORE`.
    :param namespace: the OpenLineage namespace scheme (``file``, ``s3``, ``gs``...); aliases of one
        store (``s3a``, ``gcs``, ``az``) share their store's scheme.
    :param install: what to ``pip install`` for Airflow to reach it (empty: nothing).
    :param note: what else to say when Airflow has no file system for it.
    """

    commit: str
    namespace: str
    install: str = ""
    note: str = ""


_LOCAL_DISK = Store(LOCAL, "file")
_S3 = Store(OBJECT_STORE, "s3", "airflow-provider-constant-contact[s3]")
_GCS = Store(OBJECT_STORE, "gs", "airflow-provider-constant-contact[gcs]")
_AZURE = Store(OBJECT_STORE, "abfss", "airflow-provider-constant-contact[azure]")
STORES: dict[str, Store] = {
    "": _LOCAL_DISK,  # an ObjectStoragePath built from a plain path
    "file": _LOCAL_DISK,
    "local": _LOCAL_DISK,
    "s3": _S3,
    "s3a": _S3,
    "gs": _GCS,
    "gcs": _GCS,
    "abfs": _AZURE,
    "abfss": _AZURE,
    # fsspec's alias of abfs; Airflow's Azure provider registers abfs, abfss (and adl), not az.
    "az": Store(OBJECT_STORE, "abfss", _AZURE.install,
                "Airflow's Azure provider registers abfs:// and abfss://, not az://: write to abfs:// (the same "
                "store) with the connection"),
}
# An Azure object's plain URI names its storage account, as ABFS URIs do (``abfs://{container}@{account}`` +
# this + ``/{key}``): one container name exists in every account.
AZURE_HOST_SUFFIX = ".dfs.core.windows.net"
LOCAL_PROTOCOLS = frozenset(p for p, s in STORES.items() if s.commit == LOCAL)
OBJECT_STORE_PROTOCOLS = frozenset(p for p, s in STORES.items() if s.commit == OBJECT_STORE)


def store_of(protocol: str | None) -> Store | None:
    """The :class:`Store` of an ``ObjectStoragePath`` protocol, or ``None`` when the provider cannot write there."""
    return STORES.get((protocol or "").lower())


def require_store(path: ObjectStoragePath) -> Store:
    """The :class:`Store` of ``path``, or a clear error for a protocol the provider does not write to.

    Elsewhere (``hdfs``, ``sftp``, ``memory``...) fsspec's ``mv`` is usually a copy and a delete, so a file
    could be seen half-written or be left behind by a failed task: such destinations are refused.

    :param path: the destination or target.
    """
    store = store_of(path.protocol)
    if store is None:
        raise ConstantContactInputError(
            f"destination {plain_uri(path)}: the provider writes only where a file appears complete or not at "
            f"all: local disk (file:// or an absolute path) and object stores "
            f"({', '.join(sorted(OBJECT_STORE_PROTOCOLS))}); protocol {path.protocol!r} is not one of them. "
            "Nothing was requested from the API.")
    return store


def plain_uri(path: ObjectStoragePath) -> str:
    """``s3://bucket/key``, ``file:///abs/path`` or ``abfs://container@account.dfs.core.windows.net/key``: the
    URI any tool accepts, without an Airflow conn id (``str()`` of an ``ObjectStoragePath`` gives
    ``s3://conn_id@bucket/key``).

    :param path: the written (or to be written) object.
    """
    protocol = path.protocol or ""
    if protocol in LOCAL_PROTOCOLS:
        return "file://" + os.path.abspath(path.path)
    if STORES.get(protocol, _LOCAL_DISK).namespace == "abfss":
        account = _azure_account(path)
        if account:
            container, _, key = path.path.strip("/").partition("/")
            return f"{protocol}://{container}@{account}{AZURE_HOST_SUFFIX}/{key}"
    return f"{protocol}://{path.path}"


def _azure_account(path: ObjectStoragePath) -> str | None:
    """The storage account of an Azure path's file system (adlfs), or ``None`` when it cannot be had."""
    try:
        fs = path.fs
    except Exception:  # no file system for the protocol yet: the URI is then named without its account
        return None
    # Given as account_name, or read from a connection string by the blob client.
    return getattr(fs, "account_name", None) or getattr(getattr(fs, "service_client", None), "account_name", None)


def directory_error(uri: str) -> ConstantContactInputError:
    """The error for a file destination that is an existing directory.

    :param uri: the destination's plain URI.
    """
    return ConstantContactInputError(
        f"destination {uri} is an existing directory; a file cannot replace it. To write under it with the "
        "default layout, end the destination with '/' (for an ObjectStoragePath, build it from a URL such as "
        "'file:///data/cc/'); otherwise name a file.")
