"""The examples in docs/ run: configuration blocks load, Python blocks execute."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.config import load_config

DOCS = Path(__file__).resolve().parent.parent / "docs"


def code_blocks(document: str, language: str) -> list[str]:
    text = (DOCS / document).read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_production_configuration_in_security_md_loads(tmp_path: Path) -> None:
    (block,) = code_blocks("security.md", "toml")
    path = tmp_path / "config.toml"
    path.write_text(block)
    config = load_config(path, environ={"RUNTIME_APP_SECRET_KEY": "a-production-secret-key"})
    assert config.app.env == "production" and config.auth.cookie_secure
    assert config.app.trusted_proxies == ("127.0.0.1",)
