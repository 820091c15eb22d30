"""Which targets this exporter polls: the single target of the flags and environment, or every
target of a YAML config file — merged with the credentials users already have, and filtered to
this replica's shard.

Layers, lowest first: ambient credentials (:mod:`.credentials`), the top-level
settings (flags and ``MODELARTS_EXPORTER_*``), the file's ``defaults``, the shared
``credentials`` entry a target names, and the target itself. Options override key by key;
credentials are taken whole from the highest layer that has any, so an AK from one layer never
pairs with an SK from another.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelarts_exporter.config.credentials import CREDENTIAL_FIELDS, Ambient, AmbientError, discover
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target import TargetOptions, TargetSettings
from modelarts_exporter.config.yamlfile import YamlFileError, load_yaml
from modelarts_exporter.text import validation_lines

SECRET_FILE_FIELDS = ("auth_token_file", "secret_key_file", "security_token_file", "password_file")
_CREDENTIAL_KEYS = frozenset(CREDENTIAL_FIELDS) | frozenset(SECRET_FILE_FIELDS)
_PATH_KEYS = (*SECRET_FILE_FIELDS, "ca_bundle")


class ConfigFile(BaseModel):
    """The shape of the multi-target file (see ``docs/config.example.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, dict[str, Any]] = Field(default_factory=dict)
    targets: list[dict[str, Any]] = Field(min_length=1)


def shard_of(name: str, total_shards: int) -> int:
    """A stable shard for a target name: the same on every replica and every start."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % total_shards


def merge(layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Layers from lowest to highest priority, merged as the module docstring says."""
    merged: dict[str, Any] = {}
    credentials: dict[str, Any] = {}
    for layer in layers:
        merged.update((k, v) for k, v in layer.items() if k not in _CREDENTIAL_KEYS)
        own = {k: v for k, v in layer.items() if k in _CREDENTIAL_KEYS and v is not None}
        if own:
            credentials = own
    merged.update(credentials)
    return merged


def _error_lines(error: ValidationError, prefix: str) -> list[str]:
    return [prefix + line for line in validation_lines(error)]


def _relative_to(base: Path, layer: Mapping[str, Any]) -> dict[str, Any]:
    """File paths in a config file are relative to the file, as users expect."""
    fixed = dict(layer)
    for key in _PATH_KEYS:
        value = fixed.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            fixed[key] = str(base / value)
    return fixed


def single_target(top_level: Mapping[str, Any], ambient: Ambient) -> TargetSettings:
    options = merge([ambient.options, top_level])
    # Unnamed until its project is known; require_target() below says what is missing.
    options["name"] = options.get("project_id") or options.get("project_name") or "default"
    try:
        target = TargetSettings(**options)
    except ValidationError as error:
        lines = _error_lines(error, f"{ambient.source or 'settings'}: ")
        raise ConfigError("\n".join(lines)) from None
    target.require_target()
    return target


def _read(path: Path) -> ConfigFile:
    try:
        document = load_yaml(path)
    except YamlFileError as error:
        raise ConfigError(str(error)) from None
    try:
        return ConfigFile.model_validate(document)
    except ValidationError as error:
        raise ConfigError("\n".join(_error_lines(error, f"{path}: "))) from None


def _shared_credentials(
    config: ConfigFile, reference: object, label: str, path: Path
) -> Mapping[str, Any]:
    if reference is None:
        return {}
    if not isinstance(reference, str) or reference not in config.credentials:
        known = ", ".join(sorted(config.credentials)) or "none defined"
        raise ConfigError(f"{label}: credentials: no entry {reference!r} (known: {known})")
    shared = config.credentials[reference]
    unknown = set(shared) - _CREDENTIAL_KEYS
    if unknown:
        listed = ", ".join(sorted(unknown))
        raise ConfigError(f"{path}: credentials.{reference}: not a credential: {listed}")
    return shared


def load_file(path: Path, top_level: Mapping[str, Any], ambient: Ambient) -> list[TargetSettings]:
    """Every target of the file, validated; :class:`ConfigError` naming file, target and field."""
    config = _read(path)
    ambient_layer = {
        k: v for k, v in ambient.options.items() if k in (*CREDENTIAL_FIELDS, "iam_endpoint")
    }
    targets: list[TargetSettings] = []
    problems: list[str] = []
    for index, raw in enumerate(config.targets):
        target = dict(raw)
        reference = target.pop("credentials", None)
        name = target.get("name") or target.get("project_id") or target.get("project_name")
        label = f"{path}: targets[{index}] ({name})"
        try:
            shared = _shared_credentials(config, reference, label, path)
            layers = [ambient_layer, top_level, config.defaults, shared, target]
            settings = TargetSettings(**merge([_relative_to(path.parent, x) for x in layers]))
            settings.require_target()
        except ValidationError as error:
            problems.extend(_error_lines(error, f"{label}: "))
            continue
        except ConfigError as error:
            problems.append(str(error) if str(error).startswith(str(path)) else f"{label}: {error}")
            continue
        if any(settings.name == other.name for other in targets):
            problems.append(f"{label}: name {settings.name!r} is used by another target")
            continue
        if settings.project_id and any(settings.project_id == t.project_id for t in targets):
            # Series are labelled by project: two targets on one project would collide.
            problems.append(f"{label}: project_id {settings.project_id!r} has another target")
            continue
        targets.append(settings)
    if problems:
        raise ConfigError("\n".join(problems))
    return targets


def resolve(settings: Settings, environ: Mapping[str, str] | None = None) -> list[TargetSettings]:
    """The targets this replica polls; :class:`ConfigError` with one line per problem."""
    return of_shard(every_target(settings, environ), settings)


def of_shard(targets: Sequence[TargetSettings], settings: Settings) -> list[TargetSettings]:
    """The ones of ``targets`` that this replica's shard polls."""
    return [t for t in targets if shard_of(t.name, settings.total_shards) == settings.shard]


def empty_shard(settings: Settings, every: int) -> str:
    """What to warn about a shard that polls nothing: it is ready, but is it meant to be?"""
    return (
        f"shard {settings.shard} of {settings.total_shards} polls none of the {every} target(s): "
        "it serves no target metrics and /readyz answers ready; "
        "fewer TOTAL_SHARDS than targets avoids idle replicas"
    )


def every_target(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[TargetSettings]:
    """Every configured target, of all shards; :class:`ConfigError` with one line per problem."""
    environ = os.environ if environ is None else environ
    try:
        ambient = discover(environ, Path.home(), Path.cwd())
    except AmbientError as error:
        raise ConfigError(str(error)) from None
    top_level = {
        name: getattr(settings, name)
        for name in settings.model_fields_set & set(TargetOptions.model_fields)
    }
    if settings.config_file is not None:
        return load_file(settings.config_file, top_level, ambient)
    return [single_target(top_level, ambient)]
