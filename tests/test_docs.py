"""The documentation site (MkDocs, strict) builds, documents every module, and fails on a broken link; every
public class and function of the package has a docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys

import pytest

import airflow_provider_cc
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "docs" / "_hooks"))
import reference

pytestmark = pytest.mark.airflow_independent


def build(config, site) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=900, cwd=ROOT)


def public_modules() -> list[str]:
    """The package's modules a user may import: no part of the dotted name starts with ``_``."""
    names = [airflow_provider_cc.__name__]
    for info in pkgutil.walk_packages(airflow_provider_cc.__path__, "airflow_provider_cc."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def test_the_site_builds_strictly_with_a_reference_page_per_module(tmp_path):
    proc = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    modules = reference.modules()
    assert modules == [m for m in public_modules() if m.rsplit(".", 1)[-1] != "__main__"], (
        "the reference is generated from the package tree: a new module needs no configuration")
    for name in modules:
        page = (tmp_path / "site" / "reference" / f"{name}.html").read_text()
        assert f"{name}" in page and 'class="doc doc-contents' in page, name
    home = (tmp_path / "site" / "index.html").read_text()
    assert "airflow-provider-constant-contact" in home, "the README is the site's home"
    assert_links_open_from_files(tmp_path / "site")


def assert_links_open_from_files(site):
    """Every link between the site's pages names a file that exists: opened as site/index.html (file://), a
    link to a folder would show a directory listing, not the page."""
    broken = set()
    for page in site.rglob("*.html"):
        if page.name == "404.html":  # served by a web server for a missing page, with absolute links
            continue
        for target in re.findall(r'(?:href|src)="([^"]+)"', page.read_text()):
            if re.match(r"^(?:[a-z][a-z0-9+.-]*:|#|//)", target):  # another site, an anchor on this page
                continue
            path = (page.parent / target.split("#")[0].split("?")[0]).resolve()
            if not path.is_file():
                broken.add(f"{page.relative_to(site)} -> {target}")
    assert not broken, sorted(broken)[:20]


def test_docs_serve_rebuilds_when_the_pages_made_from_the_checkout_s_root_change():
    import yaml

    class Loader(yaml.SafeLoader):  # mkdocs.yml may hold !!python tags; only "watch" is read here
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)
    assert set(reference.ROOT_PAGES) | {"airflow_provider_cc"} <= set(config["watch"])


def test_a_broken_link_fails_the_build(tmp_path):
    docs = tmp_path / "docs"  # a copy of the checkout's pages, the package and the root pages beside it
    shutil.copytree(ROOT / "docs", docs)
    (tmp_path / "airflow_provider_cc").symlink_to(ROOT / "airflow_provider_cc")
    for page in reference.ROOT_PAGES:
        shutil.copy(ROOT / page, tmp_path / page)
    (docs / "install.md").write_text((docs / "install.md").read_text() + "\n[gone](no-such-page.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text().replace("docs_dir: docs", f"docs_dir: {docs}")
                      .replace("  - docs/_hooks/reference.py", f"  - {docs}/_hooks/reference.py")
                      .replace('paths: ["."]', f'paths: ["{tmp_path}"]'))
    proc = build(config, tmp_path / "site")
    assert proc.returncode != 0 and "no-such-page.md" in proc.stdout + proc.stderr


def test_every_public_class_and_function_has_a_docstring():
    """Defined (not imported) in a public module, with a public name: the API reference shows its docstring."""
    missing = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if (inspect.isclass(obj) or (inspect.isfunction(obj) and obj.__name__ == name)) and not (
                    obj.__doc__ or "").strip():
                missing.append(f"{module_name}.{name}")
    assert missing == []


def test_the_install_lines_name_the_wheel_the_build_makes():
    """The wheel file the README and docs/install.md tell pip to install is the one ``python -m build`` makes for
    this version (a glob inside quotes reaches pip unexpanded, and pip refuses it)."""
    from airflow_provider_cc import __version__

    wheel = f"airflow_provider_constant_contact-{__version__}-py3-none-any.whl"
    for page in (ROOT / "README.md", ROOT / "docs" / "install.md"):
        named = set(re.findall(r"airflow_provider_constant_contact-[^\s\"'\[]*\.whl", page.read_text()))
        assert named == {wheel}, (page.name, named)
