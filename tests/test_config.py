from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import get_type_hints

import pytest

from runtime.config import DEFAULT_SECRET_KEY, Config, ConfigError, RealtimeConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None, environ={})
    assert config == Config()
    assert config.realtime.broker == "memory" and config.realtime.allow_anonymous


def test_the_shipped_config_toml_loads() -> None:
    config = load_config(Path(__file__).parent.parent / "config.toml", environ={})
    assert config.app.demo and config.database.path == "var/runtime.sqlite3"


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[api]\npage_size = 10\n[realtime]\nallowed_origins = ["https://a.example"]\n'
    )
    config = load_config(
        path,
        environ={
            "RUNTIME_API_MAX_PAGE_SIZE": "50",
            "RUNTIME_REALTIME_ALLOW_ANONYMOUS": "false",
            "RUNTIME_REALTIME_HEARTBEAT": "2.5",
            "RUNTIME_PASSWORD": "not configuration",
            "UNRELATED": "1",
        },
    )
    assert config.api.page_size == 10 and config.api.max_page_size == 50
    assert config.realtime.allowed_origins == ("https://a.example",)
    assert config.realtime.allow_anonymous is False
    assert config.realtime.heartbeat == 2.5


def test_trusted_proxies_take_addresses_and_networks() -> None:
    config = load_config(
        None, environ={"RUNTIME_APP_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8, ::1"}
    )
    assert config.app.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    assert Config().app.trusted_proxies == ()


def test_environment_lists_are_comma_separated() -> None:
    config = load_config(
        None, environ={"RUNTIME_REALTIME_ALLOWED_ORIGINS": "https://a.example, https://b.example"}
    )
    assert config.realtime.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    "url",
    [
        "memory",
        "redis://127.0.0.1:6379/0",
        "redis://:pw@cache:6380",
        "rediss://u:p@h/2",
        "unix:///run/redis.sock",
    ],
)
def test_the_broker_is_memory_or_a_redis_url(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, ""), environ={"RUNTIME_REALTIME_BROKER": url})
    assert config.realtime.broker == url


@pytest.mark.parametrize(
    "url", ["", "memory://", "redis://127.0.0.1:6379/3", "rediss://:pw@h", "redis+unix:///r.sock"]
)
def test_rate_limits_are_counted_in_memory_or_redis(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, ""), environ={"RUNTIME_AUTH_RATE_LIMIT_STORAGE": url})
    assert config.auth.rate_limit_storage == url


@pytest.mark.parametrize(
    "toml, environ, key",
    [
        ("[api]\npage_size = 'ten'\n", {}, "api.page_size"),
        ("[api]\npage_size = 0\n", {}, "api.page_size"),
        ("[api]\npage_size = true\n", {}, "api.page_size"),
        ("", {"RUNTIME_API_PAGE_SIZE": "ten"}, "api.page_size"),
        ("", {"RUNTIME_REALTIME_ALLOW_ANONYMOUS": "maybe"}, "realtime.allow_anonymous"),
        ("[realtime]\nbroker = 'kafka'\n", {}, "realtime.broker"),
        ("", {"RUNTIME_REALTIME_BROKER": "redis://"}, "realtime.broker"),
        ("", {"RUNTIME_REALTIME_BROKER": "redis://host:port/0"}, "realtime.broker"),
        ("", {"RUNTIME_REALTIME_BROKER": "redis://host/zero"}, "realtime.broker"),
        ("", {"RUNTIME_REALTIME_BROKER": "http://127.0.0.1:6379"}, "realtime.broker"),
        ("", {"RUNTIME_REALTIME_BROKER": "unix://"}, "realtime.broker"),
        ("[auth]\nrate_limit_storage = 'mongodb://x'\n", {}, "auth.rate_limit_storage"),
        ("[auth]\nrate_limit_storage = 'redis://x:port/0'\n", {}, "auth.rate_limit_storage"),
        ("[auth]\nrate_limit_storage = 'redis://x/zero'\n", {}, "auth.rate_limit_storage"),
        ("[auth]\nrate_limit_storage = 'memory'\n", {}, "auth.rate_limit_storage"),
        ("[realtime]\nallowed_origins = 'x'\n", {}, "realtime.allowed_origins"),
        ("[realtime]\nallowed_origins = ['example.com']\n", {}, "realtime.allowed_origins"),
        ("[auth]\nallowed_origins = ['*']\n", {}, "auth.allowed_origins"),
        ("[app]\ntrusted_proxies = ['proxy.internal']\n", {}, "app.trusted_proxies"),
        ("[app]\ntrusted_proxies = '10.0.0.1'\n", {}, "app.trusted_proxies"),
        ("", {"RUNTIME_APP_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.0/33"}, "app.trusted_proxies"),
        ("[auth]\nallowed_origins = ['example.com']\n", {}, "auth.allowed_origins"),
        ("", {"RUNTIME_AUTH_ALLOWED_ORIGINS": "https://a.example, b"}, "auth.allowed_origins"),
        ("[app]\nenv = 'staging'\n", {}, "app.env"),
        ("[app]\nsecret_key = 'short'\n", {}, "app.secret_key"),
        ("[app]\ncolour = 'blue'\n", {}, "app.colour"),
        ("[nope]\nx = 1\n", {}, "nope"),
        ("app = 1\n", {}, "app"),
        ("[auth]\nlogin_limit_per_user = 'lots'\n", {}, "auth.login_limit_per_user"),
        ("[app\n", {}, "config.toml"),
        ("[query]\nmax_expand = 0\n", {}, "query.max_expand"),
        ("", {"RUNTIME_QUERY_MAX_EXPAND": "many"}, "query.max_expand"),
        ("[realtime]\noutbox_group_wait = -0.001\n", {}, "realtime.outbox_group_wait"),
        ("", {"RUNTIME_REALTIME_OUTBOX_GROUP_WAIT": "61"}, "realtime.outbox_group_wait"),
    ],
)
def test_bad_values_name_their_key(
    tmp_path: Path, toml: str, environ: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, toml), environ=environ)
    message = str(info.value)
    assert key in message and "\n" not in message


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="RUNTIME_API_PAGE_SIZE"):
        load_config(None, environ={"RUNTIME_API_PAGE_SIZE": "many"})


def test_production_refuses_the_shipped_secret_key() -> None:
    with pytest.raises(ConfigError, match=r"app\.secret_key"):
        load_config(None, environ={"RUNTIME_APP_ENV": "production"})
    config = load_config(
        None, environ={"RUNTIME_APP_ENV": "production", "RUNTIME_APP_SECRET_KEY": "x" * 32}
    )
    assert config.app.secret_key != DEFAULT_SECRET_KEY


def test_replace_validates() -> None:
    config = Config()
    assert config.replace(api={"page_size": 5}).api.page_size == 5
    with pytest.raises(ConfigError, match=r"api\.page_size"):
        config.replace(api={"page_size": -1})


def test_a_postgresql_url_replaces_the_sqlite_file() -> None:
    assert load_config(None, environ={}).database.target == "var/runtime.sqlite3"
    url = "postgres://app:s3cret@db.internal:5432/app?sslmode=require"
    config = load_config(None, environ={"RUNTIME_DATABASE_URL": url})
    assert config.database.url == url and config.database.target == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://app:s3cret@db/app", "expected a URL like postgresql://"),
        ("sqlite:///var/app.sqlite3", "SQLite is database.path"),
        ("postgresql://app:s3cret@db:port/app", "expected a URL like postgresql://"),
        ("postgresql://app:s3cret@db:5432/", "no database name"),
    ],
)
def test_a_bad_database_url_is_one_line_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load_config(None, environ={"RUNTIME_DATABASE_URL": url})
    text = str(failure.value)
    assert text.startswith("database.url: ") and message in text
    assert "s3cret" not in text and "\n" not in text


def _numeric_keys() -> list[tuple[str, str]]:
    """Every number in the configuration, as (section, key): new keys are covered too."""
    found = []
    for section in dataclasses.fields(Config):
        types = get_type_hints(get_type_hints(Config)[section.name])
        found.extend((section.name, key) for key, typ in types.items() if typ in (int, float))
    return found


NUMERIC_KEYS = _numeric_keys()


def test_the_numeric_keys_are_found() -> None:
    assert ("realtime", "heartbeat") in NUMERIC_KEYS
    assert ("auth", "session_lifetime") in NUMERIC_KEYS
    assert len(NUMERIC_KEYS) >= 15


@pytest.mark.parametrize("section, key", NUMERIC_KEYS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_no_number_may_be_nan_or_infinite(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    """NaN passes every comparison with a bound: a heartbeat of NaN seconds spins the
    heartbeat loop, a heartbeat_timeout of NaN never times out. From TOML and from the
    environment alike, one line naming the key (and the variable)."""
    with pytest.raises(ConfigError) as from_toml:
        load_config(write(tmp_path, f"[{section}]\n{key} = {value}\n"), environ={})
    variable = f"RUNTIME_{section.upper()}_{key.upper()}"
    texts = {"nan": ["nan", "NaN", "+nan"], "inf": ["inf", "Infinity", "1e400"], "-inf": ["-inf"]}
    for text in texts[value]:
        with pytest.raises(ConfigError) as from_env:
            load_config(None, environ={variable: text})
        assert variable in str(from_env.value) and "\n" not in str(from_env.value)
        assert str(from_env.value).startswith(f"{section}.{key}: ")
    message = str(from_toml.value)
    assert message.startswith(f"{section}.{key}: ") and "\n" not in message
    with pytest.raises(ConfigError, match=rf"^{section}\.{key}: "):
        Config().replace(**{section: {key: float(value)}})


def test_every_key_is_documented_and_in_config_toml() -> None:
    """docs/configuration.md has a row for each key under its section, and config.toml
    names each (a commented example counts: `# url = …`)."""
    root = Path(__file__).parent.parent
    docs = (root / "docs" / "configuration.md").read_text()
    toml = (root / "config.toml").read_text()
    missing = []
    for section in dataclasses.fields(Config):
        table = docs.split(f"## `[{section.name}]`", 1)[1].split("\n## ", 1)[0]
        toml_section = "\n" + toml.split(f"[{section.name}]\n", 1)[1].split("\n[", 1)[0]
        for key in get_type_hints(get_type_hints(Config)[section.name]):
            if f"| `{key}` |" not in table:
                missing.append(f"docs/configuration.md: {section.name}.{key}")
            if f"\n{key} =" not in toml_section and f"\n# {key} =" not in toml_section:
                missing.append(f"config.toml: {section.name}.{key}")
    assert missing == []


@pytest.mark.parametrize("section, key", NUMERIC_KEYS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_section_made_in_python_is_checked_for_finite_numbers_too(
    section: str, key: str, value: float
) -> None:
    """`RealtimeConfig(heartbeat=math.nan)`, as an app may write it for `Realtime(config=
    …)`: its check refuses it, naming the key, as loading does."""
    made = dataclasses.replace(getattr(Config(), section), **{key: value})
    with pytest.raises(ConfigError, match=rf"^{section}\.{key}: ") as refused:
        made.check()
    assert "\n" not in str(refused.value)


def test_realtime_checks_the_configuration_it_is_given() -> None:
    from quart import Quart

    from runtime import Realtime

    for bad, key in (
        (RealtimeConfig(heartbeat=math.nan), "heartbeat"),
        (RealtimeConfig(send_queue_size=0), "send_queue_size"),
    ):
        with pytest.raises(ConfigError, match=rf"^realtime\.{key}: "):
            Realtime(config=bad).init_app(Quart("checked"))
