"""Connection settings: invoke.yaml (`hvlab:` section) overlaid with HVLAB_* variables.

    HVLAB_HOST              WinRM URL (https://hv01.example.com:5986/wsman) or a host name
    HVLAB_USER              account to log on with
    HVLAB_PASSWORD          its password (only ever from the environment or a prompt)
    HVLAB_AUTH              negotiate (default), ntlm, kerberos, credssp or basic
    HVLAB_CERT_VALIDATION   true/false: verify the host's HTTPS certificate (default true)
    HVLAB_CA_FILE           PEM file of the CA that signed the host's certificate

Basic sends the password in every request; over plain HTTP anyone on the path
reads it, so it is refused unless `allow_basic_over_http: true` says otherwise.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from hvlab.errors import ConfigError
from hvlab.secrets import Secret

AUTHS = ("negotiate", "ntlm", "kerberos", "credssp", "basic")
_BOOLEANS = ("cert_validation", "allow_basic_over_http")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

DEFAULTS: dict[str, Any] = {
    "host": None,
    "user": None,
    "auth": "negotiate",
    "cert_validation": True,
    "allow_basic_over_http": False,
    "operation_timeout": 60,
    "retries": 3,
    "call_timeout": 3600,
    "ca_file": None,
}


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where the host listens, taken apart from the URL."""

    server: str
    port: int
    ssl: bool
    path: str

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl else "http"
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"{scheme}://{host}:{self.port}/{self.path}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to reach one host. The password never shows in repr or str."""

    host: str | None = None
    user: str | None = None
    password: Secret | str | None = dataclasses.field(default=None, repr=False, compare=False)
    auth: str = "negotiate"
    cert_validation: bool = True
    allow_basic_over_http: bool = False
    operation_timeout: int = 60
    retries: int = 3
    # Longest a single call may run before hvlab gives up on it (seconds).
    call_timeout: int = 3600
    # PEM file of the CA that signed the host's certificate (HVLAB_CA_FILE).
    ca_file: str | None = None

    @classmethod
    def load(cls, config: Any = None, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from invoke's config (`c.config`, or its `hvlab` section, or a dict)
        overlaid with the environment."""
        env = os.environ if env is None else env
        values = dict(DEFAULTS)
        values.update(
            {k: v for k, v in _section(config).items() if k in DEFAULTS and v is not None}
        )
        if env.get("HVLAB_HOST"):
            values["host"] = env["HVLAB_HOST"]
        if env.get("HVLAB_USER"):
            values["user"] = env["HVLAB_USER"]
        if env.get("HVLAB_AUTH"):
            values["auth"] = env["HVLAB_AUTH"]
        for key in _BOOLEANS:
            # Invoke turns INVOKE_HVLAB_<KEY> into a boolean itself, and any text but
            # "0" and "" becomes True ("false" too): read the variable and parse it here.
            raw = env.get(f"INVOKE_HVLAB_{key.upper()}")
            if raw is not None:
                values[key] = _flag(raw, f"INVOKE_HVLAB_{key.upper()}")
        if env.get("HVLAB_CERT_VALIDATION"):
            values["cert_validation"] = _flag(env["HVLAB_CERT_VALIDATION"], "HVLAB_CERT_VALIDATION")
        if env.get("HVLAB_CA_FILE"):
            values["ca_file"] = env["HVLAB_CA_FILE"]
        password = env.get("HVLAB_PASSWORD") or None
        settings = cls(
            host=values["host"] or None,
            user=values["user"] or None,
            password=Secret(password) if password else None,
            auth=str(values["auth"]).lower(),
            cert_validation=_flag(values["cert_validation"], "hvlab.cert_validation"),
            allow_basic_over_http=_flag(
                values["allow_basic_over_http"], "hvlab.allow_basic_over_http"
            ),
            operation_timeout=_number(values["operation_timeout"], "hvlab.operation_timeout", 1),
            retries=_number(values["retries"], "hvlab.retries", 0),
            call_timeout=_number(values["call_timeout"], "hvlab.call_timeout", 1),
            ca_file=str(values["ca_file"]) if values["ca_file"] else None,
        )
        if settings.auth not in AUTHS:
            raise ConfigError(
                f"unknown authentication {settings.auth!r} (HVLAB_AUTH or hvlab.auth); "
                f"use one of {', '.join(AUTHS)}"
            )
        if settings.auth == "credssp" and importlib.util.find_spec("requests_credssp") is None:
            raise ConfigError(
                "HVLAB_AUTH=credssp needs the requests-credssp package, which is not installed: "
                "pip install requests-credssp, or use auth negotiate"
            )
        if settings.ca_file and not os.path.isfile(settings.ca_file):
            raise ConfigError(f"ca_file {settings.ca_file} does not exist (HVLAB_CA_FILE)")
        if settings.host:
            settings.endpoint()  # fail early on a bad URL
        return settings

    def verify(self) -> bool | str:
        """What the transport checks the host's certificate against: the CA file when
        one is given, else the system's trust store, or nothing when validation is off."""
        if not self.cert_validation:
            return False
        return self.ca_file or True

    def secret(self) -> str:
        """The password as text, for the transport only."""
        if self.password is None:
            return ""
        return self.password.reveal() if isinstance(self.password, Secret) else str(self.password)

    def endpoint(self) -> Endpoint:
        """The host URL taken apart; refuses what would leak credentials."""
        if not self.host:
            raise ConfigError("no host is configured: set HVLAB_HOST or hvlab.host")
        raw = self.host.strip()
        if "://" not in raw:
            raw = f"https://{raw}"
        try:
            url = urllib.parse.urlsplit(raw)
            port = url.port
        except ValueError as exc:
            raise ConfigError(f"HVLAB_HOST {self.host!r} is not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f"HVLAB_HOST {self.host!r} must look like https://host:5986/wsman or http://host:5985/wsman"
            )
        if url.username or url.password:
            raise ConfigError(
                "HVLAB_HOST must not carry credentials; use HVLAB_USER and HVLAB_PASSWORD"
            )
        ssl = url.scheme == "https"
        if self.auth == "basic" and not ssl and not self.allow_basic_over_http:
            raise ConfigError(
                "Basic authentication over plain HTTP would send the password in clear text. "
                "Use https://...:5986, or auth negotiate, or set `allow_basic_over_http: true` "
                "in the hvlab section of invoke.yaml if this network is private"
            )
        return Endpoint(
            server=url.hostname,
            port=port or (5986 if ssl else 5985),
            ssl=ssl,
            path=url.path.lstrip("/") or "wsman",
        )

    def __str__(self) -> str:
        return repr(self)


def _section(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    section = (
        config.get("hvlab", config)
        if isinstance(config, Mapping)
        else getattr(config, "hvlab", config)
    )
    if section is None:
        return {}
    if isinstance(section, Mapping):
        return dict(section)
    try:
        return dict(section)
    except (TypeError, ValueError):
        return {k: getattr(section, k) for k in DEFAULTS if hasattr(section, k)}


def flag_setting(
    config: Any, key: str, default: bool, env: Mapping[str, str] | None = None
) -> bool:
    """A true/false setting of the hvlab section that is not a connection setting
    (hard_reset), parsed as strictly as those are."""
    env = os.environ if env is None else env
    raw = env.get(f"INVOKE_HVLAB_{key.upper()}")
    if raw is not None:
        return _flag(raw, f"INVOKE_HVLAB_{key.upper()}")
    value = _section(config).get(key)
    return default if value is None else _flag(value, f"hvlab.{key}")


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(
        f"{name} must be true or false (or yes/no, on/off, 1/0), not {str(value)[:20]!r}"
    )


def _number(value: Any, name: str, minimum: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if n < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {n}")
    return n
