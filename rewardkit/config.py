"""One typed dataclass per command is its command-line flags, its YAML schema and its `--help`.

Declare fields with `option(default, "help text", choices=..., positional=True)`. `parse_config`
reads an optional `--config FILE.yaml`, then lets flags override it; unknown keys in either are errors
that name the key and list the valid ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration the user must fix; the CLI prints it without a traceback."""


def option(default: Any = dataclasses.MISSING, help: str = "", *, choices: tuple | None = None,
           positional: bool = False, flag: str | None = None) -> Any:
    """A config field; `flag` overrides the flag name derived from the field name."""
    metadata = {"help": help, "choices": choices, "positional": positional, "flag": flag}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(underlying type, optional?) of str, int, float, bool, X | None, list[X], dict[str, float]."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])[0], True
    return (origin or annotation), False


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        kind, _ = _base_type(hints[f.name])
        default = None if f.default is dataclasses.MISSING else f.default
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        text = meta.get("help", "")
        if default not in (None, "", [], {}) and kind is not bool:
            text += f" (default: {default})"
        if meta.get("positional"):
            parser.add_argument(f.name, help=text, type=str if kind in (list, dict) else kind,
                                nargs="?" if default is not None else None, default=argparse.SUPPRESS)
            continue
        flags = [meta.get("flag") or f"--{f.name.replace('_', '-')}"]
        common = {"dest": f.name, "help": text, "default": argparse.SUPPRESS}
        if kind is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, **common)
        elif kind is list:
            parser.add_argument(*flags, nargs="+", **common)
        elif kind is dict:
            parser.add_argument(*flags, nargs="+", metavar="KEY=VALUE", **common)
        else:
            parser.add_argument(*flags, type=kind, choices=meta.get("choices"), **common)


def _coerce(cls: type, name: str, value: Any) -> Any:
    hints = typing.get_type_hints(cls)
    kind, optional = _base_type(hints[name])
    if value is None:
        if optional:
            return None
        raise ConfigError(f"option '{name}' cannot be empty")
    try:
        if kind is dict:
            if isinstance(value, list):  # from flags: KEY=VALUE ...
                value = dict(item.split("=", 1) for item in value)
            return {str(k): float(v) for k, v in value.items()}
        if kind is list:
            return list(value) if isinstance(value, list | tuple) else [value]
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(f"option '{name}' expects {getattr(kind, '__name__', kind)}, got {value!r}") from None


def build_config(cls: type, values: dict, source: str = "config") -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            close = [k for k in known if k.startswith(key[:3])]
            hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
            raise ConfigError(f"unknown option '{key}' in {source}{hint}; valid options: {', '.join(sorted(known))}")
    clean = {k: _coerce(cls, k, v) for k, v in values.items()}
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        # The default may lie outside the choices (pooling=None: the backbone decides); a saved config repeats it.
        if choices and f.name in clean and clean[f.name] not in choices and clean[f.name] != f.default:
            raise ConfigError(f"option '{f.name}' must be one of {', '.join(map(str, choices))}, got {clean[f.name]!r}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in clean and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    if missing:
        raise ConfigError(f"missing required option(s): {', '.join(missing)}")
    return cls(**clean)


def parse_config(cls: type, namespace: argparse.Namespace) -> Any:
    """Merge `--config FILE` (YAML) with the flags given on the command line; flags win."""
    values: dict = {}
    config_file = getattr(namespace, "config", None)
    if config_file:
        path = Path(config_file)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML: {err}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of option: value")
        values.update({k.replace("-", "_"): v for k, v in loaded.items()})
        source = str(path)
    else:
        source = "config"
    flags = {k: v for k, v in vars(namespace).items() if k not in ("config", "command", "func", "data_command")}
    values.update(flags)
    return build_config(cls, values, source)


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
