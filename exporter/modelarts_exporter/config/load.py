"""Reading a settings model from command-line flags, then the environment.

Problems are reported one line each, naming the variable, and never echo a secret's value
(:func:`describe_errors`); a mistyped flag's value is not shown either (it may be a secret).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target_fields import ENV_PREFIX, SECRET_FIELDS
from modelarts_exporter.text import Location, validation_lines


def _variable(location: Location) -> str:
    return f"{ENV_PREFIX}{str(location[0]).upper()}" if location else "settings"


def _not_secret(location: Location) -> bool:
    return bool(location) and location[0] not in SECRET_FIELDS


def describe_errors(error: ValidationError) -> str:
    """One line per problem, naming the environment variable, never a secret's value."""
    return "\n".join(validation_lines(error, _variable, _not_secret))


def load(args: list[str] | None = None) -> Settings:
    """Settings from the environment and, when given, command-line flags; :class:`ConfigError`
    with one line per problem otherwise."""
    return parse(Settings, args)


_Model = TypeVar("_Model", bound=BaseSettings)


def parse(
    model: type[_Model], args: list[str] | None = None, prog: str = "modelarts-exporter"
) -> _Model:
    """:func:`load` for any settings model of this module's kind (:data:`SETTINGS_CONFIG`)."""
    try:
        if args is None:
            return model()
        return model(_cli_parse_args=args, _cli_prog_name=prog)
    except ValidationError as error:
        raise ConfigError(describe_errors(error)) from None
    except SettingsError as error:
        raise ConfigError(_flags_only(str(error))) from None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A line for each ``MODELARTS_EXPORTER_*`` variable that is no setting (a typo is ignored
    otherwise, and the setting meant keeps its default), naming the closest real one. Never the
    value: the variable meant may be a secret."""
    known = [name.upper() for name in Settings.model_fields]
    lines = []
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings reads the environment case-insensitively
        if not upper.startswith(ENV_PREFIX) or upper.removeprefix(ENV_PREFIX) in known:
            continue
        # Matched without the prefix, which every name shares and would make all look close.
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), known, n=1, cutoff=0.6)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        lines.append(f"{name} is not a setting and is ignored (value not shown){hint}")
    return lines


def _flags_only(message: str) -> str:
    """argparse quotes unrecognized arguments with their values; after a mistyped flag such as
    ``--auth-tokn`` that value is a secret. Keep the flags."""
    head, sep, rest = message.partition("unrecognized arguments: ")
    if not sep:
        return message
    flags = [word.split("=", 1)[0] for word in rest.split() if word.startswith("-")]
    return f"{head}{sep}{' '.join(flags)} (values not shown)"
