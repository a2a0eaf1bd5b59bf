"""MkDocs hook: the repository's own pages and an API reference generated from the package tree.

* The README is the site's home (``index.md``); CONTRIBUTING, CHANGELOG and SECURITY are pages too. Their links
  into ``docs/`` and to each other, and the topic pages' links to ``../README.md`` and the others, are
  rewritten to the site's pages, so every link is checked by the strict build.
* Every module of ``airflow_provider_cc`` (private ones, whose names start with ``_``, left out) gets
  ``reference/<dotted.name>.md`` holding ``::: dotted.name`` for mkdocstrings, listed under *API reference*
  after the topic pages: a new module is documented without editing any configuration.

Nothing is written into ``docs/``: the generated pages exist only in the build.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

PACKAGE = "airflow_provider_cc"
ROOT = Path(__file__).resolve().parents[2]
# Pages made from files at the repository's root, and their names in the site.
ROOT_PAGES = {"README.md": "index.md", "CONTRIBUTING.md": "contributing.md", "CHANGELOG.md": "changelog.md",
              "SECURITY.md": "security.md"}
# The topic pages, in reading order; a page of docs/ not listed here is appended after them.
TOPICS = ["index.md", "account-scale.md", "transport.md", "window-and-sensor.md", "event-driven.md",
          "storage-and-formats.md", "lineage-and-assets.md", "install.md", "production.md", "development.md",
          "benchmarks.md", "contributing.md", "changelog.md", "security.md"]


def modules() -> list[str]:
    """Dotted names of the package's public modules, packages first, in path order."""
    names = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__" or any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return names


def _page(name: str) -> str:
    return f"reference/{name}.md"


def _root_links(text: str, prefix: str) -> str:
    """Links to the root pages (written ``{prefix}README.md``...) pointed at their site pages."""
    for source, page in ROOT_PAGES.items():
        text = re.sub(rf"\]\({re.escape(prefix)}{re.escape(source)}(?=[#)])", f"]({page}", text)
    return text


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return _root_links(markdown, "../") if page.file.src_uri not in ROOT_PAGES.values() else markdown


def on_files(files: Files, config: Any) -> Files:
    for source, page in ROOT_PAGES.items():
        text = (ROOT / source).read_text()
        files.append(File.generated(config, page, content=_root_links(text.replace("](docs/", "]("), "")))
    for name in modules():
        files.append(File.generated(config, _page(name), content=f"::: {name}\n"))
    return files


class _KwargsParameters(logging.Filter):
    """Operators document the BaseOperator arguments they take through ``**kwargs`` (``:param
    constant_contact_conn_id:``), as Airflow's own do; griffe, finding no such parameter, says so. That one
    message is dropped (as ``warn_unknown_params: false`` in mkdocs.yml drops its twin); every other griffe
    warning still fails the strict build."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No matching parameter for" not in record.getMessage()


def on_startup(**kwargs: Any) -> None:
    for name in ("griffe", "mkdocs.plugins.griffe", "mkdocs.plugins.mkdocstrings_handlers"):
        logging.getLogger(name).addFilter(_KwargsParameters())


# Sphinx roles in docstrings (:func:`~x.y`, :data:`Z`): mkdocstrings renders the text as Markdown, leaving
# ":func:" before the code span; the role goes, the name stays code (without Sphinx's "~" shortening mark).
_ROLE = re.compile(r":(?:py:)?(?:func|data|class|meth|attr|mod|exc|obj|const):<code>~?")


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    return _ROLE.sub("<code>", html)


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    pages = [p for p in TOPICS if (docs / p).exists() or p in ROOT_PAGES.values()]
    pages += sorted(str(p.relative_to(docs)) for p in docs.glob("*.md") if str(p.relative_to(docs)) not in TOPICS)
    config["nav"] = [*pages, {"API reference": [{name: _page(name)} for name in modules()]}]
    return config
