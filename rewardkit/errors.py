"""The errors a user must act on. Each names what to fix; the CLI prints them without a traceback.

RewardkitError is the base, so a caller (the CLI, a notebook) can catch every one of them at once.
"""

from __future__ import annotations


class RewardkitError(Exception):
    """Base of the errors below."""


class ConfigError(RewardkitError, ValueError):
    """A configuration the user must fix: an unknown option, a bad value, options that do not fit together."""


class DataError(RewardkitError, ValueError):
    """A record that cannot be used, with where it came from. The only error readers raise."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None, field: str | None = None):
        self.message, self.source, self.line, self.field = message, source, line, field
        where = []
        if source is not None:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join([*where, message]))


class ModelError(RewardkitError, ValueError):
    """A model that cannot be built or loaded as asked."""


class TrainingError(RewardkitError, RuntimeError):
    """Training stopped for a reason the user must see (e.g. a non-finite loss)."""


class GenerationError(RewardkitError, RuntimeError):
    """A generation backend that cannot produce samples at all (unreachable, refused every request)."""
