"""The package ships what a library ships: the client and the templates apps reuse.
The demo's pages (top-level templates/ and static/) belong to the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_holds_the_runtimes_templates_and_static_files(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "runtime", source / "runtime", ignore=shutil.ignore_patterns("__pycache__")
    )
    # build_py is the step of every wheel build that lays out the package and its data.
    setup = [sys.executable, "-c", "from setuptools import setup; setup()", "-q"]
    result = subprocess.run(
        [*setup, "build_py", "--build-lib", str(tmp_path / "lib")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 12,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lib = tmp_path / "lib"
    names = {path.relative_to(lib).as_posix() for path in lib.rglob("*") if path.is_file()}
    for shipped in (
        "runtime/templates/runtime/base.html",
        "runtime/templates/runtime/login.html",
        "runtime/static/realtime-client.js",
        "runtime/static/realtime-client.d.ts",
        "runtime/static/realtime-htmx.js",
        "runtime/static/vendor/htmx-2.0.11.min.js",
        "runtime/static/vendor/htmx-ext-sse-2.2.4.min.js",
        "runtime/static/vendor/htmx-LICENSE.txt",
        "runtime/pages.py",
        "runtime/demo/__init__.py",
    ):
        assert shipped in names, shipped
    assert not any("demo.css" in name or "messages.html" in name for name in names)
