"""The demo is the runtime's own app only: its collections exist where it is used.

Each check runs in a fresh interpreter: this test process has the demo loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import TIMEOUT


def python(tmp_path: Path, code: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ["RUNTIME_DATABASE_PATH"] = str(tmp_path / "db.sqlite3")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=TIMEOUT * 6,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_demo_registers_nothing_until_it_is_used(tmp_path: Path) -> None:
    code = (
        "import runtime.demo\n"
        "from runtime.base_model import collections\n"
        "print(sorted(collections()))\n"
        "runtime.demo.Message\n"
        "print(sorted(collections()))\n"
    )
    before, after = python(tmp_path, code).splitlines()
    assert before == "['users']"
    assert after == "['messages', 'notes', 'users']"


def test_create_app_is_never_the_demo_even_with_app_demo_true(tmp_path: Path) -> None:
    code = (
        "from runtime import create_app\n"
        "app = create_app()\n"
        "assert app.extensions['runtime'].config.app.demo\n"
        "served = sorted(m.collection_name() for m in app.extensions['runtime'].models)\n"
        "rules = sorted(r.rule for r in app.url_map.iter_rules())\n"
        "print(served, '/messages' in rules, '/login' in rules)\n"
    )
    assert python(tmp_path, code) == "['users'] False True"


def test_the_demo_app_serves_its_collections_and_pages(tmp_path: Path) -> None:
    code = (
        "from runtime.demo import create_demo_app\n"
        "app = create_demo_app()\n"
        "served = sorted(m.collection_name() for m in app.extensions['runtime'].models)\n"
        "rules = {r.rule for r in app.url_map.iter_rules()}\n"
        "print(served, {'/', '/messages', '/notes', '/login'} <= rules)\n"
    )
    assert python(tmp_path, code) == "['messages', 'notes', 'users'] True"


def test_the_demo_without_its_pages_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From an installed wheel the repository's templates/ is missing: say so."""
    import runtime.demo
    from runtime.__main__ import main

    monkeypatch.setattr(runtime.demo, "ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "the demo's pages are not in" in error and "app.demo = false" in error
