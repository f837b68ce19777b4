"""Configuration: read once, at the edge, into frozen dataclasses.

`config.toml` is overlaid by environment variables `RUNTIME_<SECTION>_<KEY>`. Every
value is checked here, so a bad one stops start-up with one line naming its key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from .database_url import postgresql_url, redacted

__all__ = [
    "DEFAULT_SECRET_KEY",
    "ApiConfig",
    "AppConfig",
    "AuthConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "QueryConfig",
    "RealtimeConfig",
    "load_config",
]

# Shipped so that `make run` works out of the box; refused when app.env is production.
DEFAULT_SECRET_KEY = "dev-only-insecure-secret-key-change-me"


class ConfigError(Exception):
    """A configuration value is missing, malformed or out of range."""


@dataclass(frozen=True, slots=True)
class AppConfig:
    env: str = "development"
    secret_key: str = DEFAULT_SECRET_KEY
    log_level: str = "info"
    demo: bool = True
    trusted_proxies: tuple[str, ...] = ()

    def check(self) -> None:
        _one_of("app.env", self.env, ("development", "production", "test"))
        _one_of("app.log_level", self.log_level, ("debug", "info", "warning", "error"))
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy.strip(), strict=False)
            except ValueError:
                raise ConfigError(
                    f"app.trusted_proxies: {proxy!r} is not an address or network "
                    "like '10.0.0.1' or '10.0.0.0/8'"
                ) from None
        if len(self.secret_key) < 16:
            raise ConfigError("app.secret_key: must be at least 16 characters")
        if self.env == "production" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ConfigError(
                "app.secret_key: the shipped default is refused in production; "
                "set RUNTIME_APP_SECRET_KEY"
            )


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    path: str = "var/runtime.sqlite3"  # SQLite, the default
    url: str = ""  # postgresql://…: PostgreSQL instead of the SQLite file
    # Start-up adds missing tables, columns and indexes (false: any difference from the
    # models stops start-up, and `python -m runtime migrate` makes the changes).
    auto_migrate: bool = True

    def check(self) -> None:
        if not self.path:
            raise ConfigError("database.path: must not be empty")
        if self.url:
            try:
                postgresql_url(self.url)
            except ValueError as exc:
                raise ConfigError(f"database.url: {exc}") from None

    @property
    def target(self) -> str:
        """What `runtime.db.open_database()` opens: the URL when one is set, else the path."""
        return self.url or self.path


@dataclass(frozen=True, slots=True)
class AuthConfig:
    session_lifetime: int = 14 * 24 * 3600
    cookie_name: str = "session"
    cookie_secure: bool = False
    login_limit_per_user: str = "5/minute"
    login_limit_per_address: str = "20/minute"
    # "": the broker's Redis when realtime.broker is one (logins count across
    # processes), else memory://.
    rate_limit_storage: str = ""
    allowed_origins: tuple[str, ...] = ()

    def check(self) -> None:
        _at_least("auth.session_lifetime", self.session_lifetime, 60)
        for origin in self.allowed_origins:
            if origin == "*":
                raise ConfigError(
                    "auth.allowed_origins: '*' would let any site log users in and out; "
                    "list origins like 'https://example.com'"
                )
            if "://" not in origin:
                raise ConfigError(
                    f"auth.allowed_origins: {origin!r} is not an origin like 'https://example.com'"
                )
        if not self.cookie_name.isidentifier():
            raise ConfigError("auth.cookie_name: must be a plain name like 'session'")
        for key in ("login_limit_per_user", "login_limit_per_address"):
            _rate_limit(f"auth.{key}", getattr(self, key))
        _check_rate_limit_storage(self.rate_limit_storage)


@dataclass(frozen=True, slots=True)
class ApiConfig:
    page_size: int = 30
    max_page_size: int = 200
    max_body_size: int = 1024 * 1024
    # Requests to the records API per user (per client address for visitors), counted
    # where the login limits are (auth.rate_limit_storage); "" counts none.
    rate_limit: str = "50/second;1000/minute"

    def check(self) -> None:
        _at_least("api.page_size", self.page_size, 1)
        _at_least("api.max_page_size", self.max_page_size, self.page_size)
        _at_least("api.max_body_size", self.max_body_size, 1024)
        if self.rate_limit:
            _rate_limit("api.rate_limit", self.rate_limit)


@dataclass(frozen=True, slots=True)
class QueryConfig:
    """Bounds of the filter language (docs/api.md, "Filters") and of `expand`."""

    max_length: int = 4096
    max_depth: int = 16
    max_terms: int = 100
    max_expand: int = 8  # foreign keys one `expand` may name (docs/api.md, "Expand")

    def check(self) -> None:
        _at_least("query.max_length", self.max_length, 1)
        _at_least("query.max_depth", self.max_depth, 1)
        _at_least("query.max_terms", self.max_terms, 1)
        _at_least("query.max_expand", self.max_expand, 1)


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    broker: str = "memory"
    allow_anonymous: bool = True
    allowed_origins: tuple[str, ...] = ()
    heartbeat: float = 25.0
    heartbeat_timeout: float = 60.0
    send_queue_size: int = 1000
    send_queue_bytes: int = 4 * 1024 * 1024
    history_size: int = 10000
    history_bytes: int = 64 * 1024 * 1024
    replay_limit: int = 1000
    max_message_size: int = 65536
    max_publish_size: int = 16384
    max_subscriptions: int = 100
    max_connections: int = 10000
    max_connections_per_user: int = 0  # 0: no cap
    max_connections_per_address: int = 0  # 0: no cap
    message_rate_limit: str = "100/10second"
    snapshot_limit: int = 500
    publish_queue_size: int = 100_000
    outbox: bool = True
    outbox_poll: float = 1.0
    outbox_keep: float = 60.0
    outbox_size: int = 100_000
    outbox_group_wait: float = 0.005
    websocket_compression: bool = False
    fast_path: bool = True

    def check(self) -> None:
        _check_broker(self.broker)
        for origin in self.allowed_origins:
            if origin != "*" and "://" not in origin:
                raise ConfigError(
                    f"realtime.allowed_origins: {origin!r} is not an origin like "
                    "'https://example.com'"
                )
        _at_least("realtime.heartbeat", self.heartbeat, 0.05)
        _at_least("realtime.heartbeat_timeout", self.heartbeat_timeout, self.heartbeat)
        _at_least("realtime.send_queue_size", self.send_queue_size, 1)
        _at_least("realtime.send_queue_bytes", self.send_queue_bytes, 65536)
        _at_least("realtime.history_size", self.history_size, 0)
        _at_least("realtime.history_bytes", self.history_bytes, 0)
        _at_least("realtime.replay_limit", self.replay_limit, 1)
        _at_least("realtime.publish_queue_size", self.publish_queue_size, 1)
        _at_least("realtime.outbox_poll", self.outbox_poll, 0.01)
        _at_least("realtime.outbox_keep", self.outbox_keep, 0)
        _at_least("realtime.outbox_size", self.outbox_size, 1000)
        _at_least("realtime.outbox_group_wait", self.outbox_group_wait, 0)
        if self.outbox_group_wait > 60:
            raise ConfigError(
                f"realtime.outbox_group_wait: must be at most 60; got {self.outbox_group_wait}"
            )
        _at_least("realtime.max_message_size", self.max_message_size, 256)
        _at_least("realtime.max_publish_size", self.max_publish_size, 16)
        _at_least("realtime.max_subscriptions", self.max_subscriptions, 1)
        _at_least("realtime.max_connections", self.max_connections, 1)
        _at_least("realtime.max_connections_per_user", self.max_connections_per_user, 0)
        _at_least("realtime.max_connections_per_address", self.max_connections_per_address, 0)
        _at_least("realtime.snapshot_limit", self.snapshot_limit, 1)
        _rate_limit("realtime.message_rate_limit", self.message_rate_limit)


@dataclass(frozen=True, slots=True)
class Config:
    app: AppConfig = field(default_factory=AppConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys changed, e.g. `replace(realtime={"heartbeat": 1})`."""
        return _build(
            {name: {**_asdict(self, name), **values} for name, values in sections.items()},
            base=self,
        )


def load_config(
    path: str | os.PathLike[str] | None = "config.toml",
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read `path` (missing file = defaults), overlay `RUNTIME_*` variables, validate."""
    data: dict[str, dict[str, Any]] = {}
    if path is not None and Path(path).is_file():
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        for section, values in raw.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: must be a [section] table")
            data[section] = dict(values)
    env = os.environ if environ is None else environ
    sections = [f.name for f in dataclasses.fields(Config)]
    for name, value in env.items():
        if not name.startswith("RUNTIME_"):
            continue
        rest = name[len("RUNTIME_") :].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                data.setdefault(section, {})[rest[len(section) + 1 :]] = _EnvValue(name, value)
        # Anything else (RUNTIME_PASSWORD and friends) is not configuration.
    return _build(data, base=Config())


class _EnvValue(str):
    """A string from the environment, converted to the key's type by `_coerce`."""

    __slots__ = ("variable",)
    variable: str

    def __new__(cls, variable: str, value: str) -> _EnvValue:
        self = super().__new__(cls, value)
        self.variable = variable
        return self


def _build(data: Mapping[str, Mapping[str, Any]], *, base: Config) -> Config:
    built: dict[str, Any] = {}
    hints = get_type_hints(Config)
    for section, values in data.items():
        if section not in hints:
            raise ConfigError(f"{section}: unknown configuration section")
        cls = hints[section]
        types = get_type_hints(cls)
        kwargs = _asdict(base, section)
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{section}.{key}: unknown configuration key")
            kwargs[key] = _coerce(f"{section}.{key}", value, types[key])
        built[section] = cls(**kwargs)
    config = dataclasses.replace(base, **built)
    for f in dataclasses.fields(config):
        getattr(config, f.name).check()
    return config


def _asdict(config: Config, section: str) -> dict[str, Any]:
    obj = getattr(config, section)
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """`value`, from TOML or the environment (an `_EnvValue`), as the `typ` of `key`."""
    convert = _CONVERTERS.get(typ)
    if convert is None and get_origin(typ) is tuple and get_args(typ)[0] is str:
        convert = _to_strings
    if convert is None:
        raise ConfigError(f"{key}: unsupported type {typ!r}")  # pragma: no cover
    return convert(key, value, typ)


def _where(value: Any) -> str:
    """The environment variable a value came from, for a message ("" from TOML)."""
    return f" (from {value.variable})" if isinstance(value, _EnvValue) else ""


def _to_bool(key: str, value: Any, typ: Any) -> bool:
    if isinstance(value, _EnvValue):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    elif isinstance(value, bool):
        return value
    raise ConfigError(f"{key}: expected true or false, got {str(value)!r}{_where(value)}")


def _to_number(key: str, value: Any, typ: Any) -> Any:
    number: Any = value
    if isinstance(value, _EnvValue):
        try:
            number = float(value) if typ is float else int(value)
        except ValueError:
            number = None
    whole = isinstance(number, int) and not isinstance(number, bool)
    # NaN passes every comparison with a bound (a heartbeat of NaN seconds spins), and
    # an infinity is no bound at all: a number must be finite.
    if whole or (typ is float and isinstance(number, float) and math.isfinite(number)):
        return typ(number)
    kind = "a whole number" if typ is int else "a finite number"
    raise ConfigError(f"{key}: expected {kind}, got {str(value)!r}{_where(value)}")


def _to_str(key: str, value: Any, typ: Any) -> str:
    if isinstance(value, str):
        return str(value)
    raise ConfigError(f"{key}: expected a string, got {value!r}")


def _to_strings(key: str, value: Any, typ: Any) -> tuple[str, ...]:
    if isinstance(value, _EnvValue):  # comma-separated
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key}: expected a list of strings, got {value!r}")


# Each key's type, and what turns a TOML or environment value into it (tuple[str, ...]:
# `_to_strings`).
_CONVERTERS: dict[Any, Callable[[str, Any, Any], Any]] = {
    bool: _to_bool,
    int: _to_number,
    float: _to_number,
    str: _to_str,
}


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: must be one of {', '.join(allowed)}; got {value!r}")


def _at_least(key: str, value: float, minimum: float) -> None:
    # Finite first: NaN passes `<`, and a section made in Python (`RealtimeConfig(…)`)
    # has not been through the parsing that refuses it.
    if not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value}")
    if value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum}; got {value}")


def _rate_limit(key: str, value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{key}: not a rate limit like '5/minute'; got {value!r}") from None


def _check_rate_limit_storage(url: str) -> None:
    """`auth.rate_limit_storage`: "" (see AuthConfig), "memory://", or a Redis URL as
    `limits` takes it (redis://, rediss://, redis+unix://)."""
    if url in ("", "memory://"):
        return
    key = "auth.rate_limit_storage"
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "redis+unix" and parsed.path:
        return
    if parsed.scheme in ("redis", "rediss"):
        try:
            parsed.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ConfigError(f"{key}: {redacted(url)!r} has a bad port") from None
        if parsed.hostname and (parsed.path.strip("/") or "0").isdigit():
            return
    raise ConfigError(
        f"{key}: {redacted(url)!r} is neither 'memory://' nor a Redis URL (redis://host:6379/0)"
    )


def _check_broker(url: str) -> None:
    """`realtime.broker`: "memory", or a Redis URL that names a server (reaching it is
    checked when the server starts)."""
    if url == "memory":
        return
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("redis", "rediss"):
        try:
            parsed.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ConfigError(f"realtime.broker: {redacted(url)!r} has a bad port") from None
        if parsed.hostname and (parsed.path.strip("/") or "0").isdigit():
            return
        raise ConfigError(
            f"realtime.broker: {redacted(url)!r} is not a URL like redis://host:6379/0"
        )
    if parsed.scheme == "unix" and parsed.path:
        return
    raise ConfigError(
        f"realtime.broker: {redacted(url)!r} is neither 'memory' nor a Redis URL (redis://host:6379/0)"
    )
