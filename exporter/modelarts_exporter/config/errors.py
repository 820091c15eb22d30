"""The one error the configuration raises."""


class ConfigError(Exception):
    """Settings that cannot work; ``str()`` is one line per problem."""
