"""The credentials users already have: Huawei Cloud SDK variables, OpenStack ``OS_*`` variables
and ``clouds.yaml`` (as the OpenStack CLI and python-otcextensions read them).

They are the lowest-priority source: a target's own settings (flags, config file), then the
exporter's ``MODELARTS_EXPORTER_*`` variables, then ``HUAWEICLOUD_SDK_*``, then ``OS_*``, then the
``clouds.yaml`` entry named by ``OS_CLOUD``. Credentials are taken as a whole from one source,
never mixed (an AK from one place and an SK from another would only confuse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelarts_exporter.config.yamlfile import YamlFileError, load_yaml

CREDENTIAL_FIELDS = (
    "auth_token",
    "access_key",
    "secret_key",
    "security_token",
    "username",
    "password",
    "domain_name",
)


class AmbientError(Exception):
    """A ``clouds.yaml`` that is named but cannot be used; one line."""


@dataclass(frozen=True, slots=True)
class Ambient:
    """Target options found in the environment, and where they came from (no values)."""

    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def has_credentials(self) -> bool:
        return any(self.options.get(name) for name in CREDENTIAL_FIELDS)


def _huaweicloud_sdk(environ: Mapping[str, str]) -> Ambient | None:
    if not environ.get("HUAWEICLOUD_SDK_AK"):
        return None
    options = {
        "access_key": environ.get("HUAWEICLOUD_SDK_AK"),
        "secret_key": environ.get("HUAWEICLOUD_SDK_SK"),
        "security_token": environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN"),
        "project_id": environ.get("HUAWEICLOUD_SDK_PROJECT_ID"),
        "iam_endpoint": environ.get("HUAWEICLOUD_SDK_IAM_ENDPOINT"),
    }
    return Ambient(_present(options), "HUAWEICLOUD_SDK_* variables")


def _openstack_env(environ: Mapping[str, str]) -> Ambient | None:
    options = {
        "iam_endpoint": environ.get("OS_AUTH_URL"),
        "username": environ.get("OS_USERNAME"),
        "password": environ.get("OS_PASSWORD"),
        "domain_name": environ.get("OS_USER_DOMAIN_NAME") or environ.get("OS_DOMAIN_NAME"),
        "project_name": environ.get("OS_PROJECT_NAME") or environ.get("OS_TENANT_NAME"),
        "project_id": environ.get("OS_PROJECT_ID") or environ.get("OS_TENANT_ID"),
        "access_key": environ.get("OS_ACCESS_KEY"),
        "secret_key": environ.get("OS_SECRET_KEY"),
        "security_token": environ.get("OS_SECURITY_TOKEN"),
    }
    found = _present(options)
    if not any(found.get(name) for name in CREDENTIAL_FIELDS):
        return None
    return Ambient(found, "OS_* variables")


def clouds_yaml_paths(environ: Mapping[str, str], home: Path, cwd: Path) -> list[Path]:
    """The OpenStack search path: ``OS_CLIENT_CONFIG_FILE``, then the working directory, the
    user's and the system's configuration."""
    paths = [Path(environ["OS_CLIENT_CONFIG_FILE"])] if environ.get("OS_CLIENT_CONFIG_FILE") else []
    return [
        *paths,
        cwd / "clouds.yaml",
        home / ".config" / "openstack" / "clouds.yaml",
        Path("/etc/openstack/clouds.yaml"),
    ]


def _clouds_yaml(environ: Mapping[str, str], paths: Sequence[Path]) -> Ambient | None:
    cloud = environ.get("OS_CLOUD")
    if not cloud:
        return None
    for path in paths:
        if not path.is_file():
            continue
        try:
            document = load_yaml(path)
        except YamlFileError as error:  # its text quotes no value: clouds.yaml holds passwords
            raise AmbientError(str(error)) from None
        clouds = document.get("clouds") if isinstance(document, dict) else None
        entry = clouds.get(cloud) if isinstance(clouds, dict) else None
        if not isinstance(entry, dict):
            continue
        raw_auth = entry.get("auth")
        auth: dict[str, Any] = raw_auth if isinstance(raw_auth, dict) else {}
        options = {
            "iam_endpoint": auth.get("auth_url"),
            "username": auth.get("username"),
            "password": auth.get("password"),
            "domain_name": auth.get("user_domain_name") or auth.get("domain_name"),
            "project_name": auth.get("project_name"),
            "project_id": auth.get("project_id"),
            "access_key": entry.get("ak") or auth.get("ak") or auth.get("access_key"),
            "secret_key": entry.get("sk") or auth.get("sk") or auth.get("secret_key"),
        }
        return Ambient(_present(options), f"OS_CLOUD={cloud} in {path}")
    raise AmbientError(f"OS_CLOUD={cloud} names no cloud in any clouds.yaml searched")


def _present(options: Mapping[str, object]) -> dict[str, Any]:
    """The options given, as text; an AK/SK pair wins over a password from the same source."""
    found = {name: str(value) for name, value in options.items() if value not in (None, "")}
    if found.get("access_key"):
        for name in ("username", "password", "domain_name"):
            found.pop(name, None)
    return found


def discover(environ: Mapping[str, str], home: Path, cwd: Path) -> Ambient:
    """The first source, in precedence order, that has credentials."""
    paths = clouds_yaml_paths(environ, home, cwd)
    for found in (_huaweicloud_sdk(environ), _openstack_env(environ), _clouds_yaml(environ, paths)):
        if found is not None and found.has_credentials():
            return found
    return Ambient()
