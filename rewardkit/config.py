"""One typed dataclass per command is its command-line flags, its YAML schema and its `--help`, through tyro.

A field's type is its flag's type (`list[float]` arrives as floats, `Literal[...]` is a choice, `bool` gives
`--x/--no-x`, `Positional[str]` a positional argument), its attribute docstring is its help, and a nested config
is spelled `--train.lr` (or `train: {lr: ...}` in YAML). Options several commands share are in rewardkit.options.

tyro builds the parser; this module adds what tyro does not do:
- `--config FILE.yaml` on every command: the file's values are the defaults that flags override, whatever their
  order. Its keys are the field names; an unknown key is an error that names it and the valid ones.
- `KEY=VALUE` flags for `dict[str, float]` options (`--mix-weights pairwise=1 rating=0.5`), as YAML maps are
  written; tyro's own spelling is `KEY VALUE` pairs, or one flag per key of the default.
- ConfigError for every rejected input: tyro prints its errors and exits, and catches ValueError (which
  ConfigError is) from constructors; the CLI prints a ConfigError without a traceback, and callers can catch it.
- Checks of options that must fit together: a config class derives from Checked and defines validate(), which
  runs whenever one is made, so an invalid config cannot reach the code that runs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import io
import re
import sys
import typing
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import typeguard
import tyro
import yaml
from tyro.constructors import ConstructorRegistry, PrimitiveConstructorSpec, PrimitiveTypeInfo

from rewardkit.errors import ConfigError

__all__ = ["FLAT", "Checked", "Command", "ConfigError", "from_dict", "load_yaml", "parse", "yaml_value"]

FLAT = tyro.conf.arg(name="")
"""Annotated[RecipeConfig, FLAT]: a nested config whose options are spelled without its field name, on the
command line (`--sources`, not `--recipe.sources`) and in YAML (top-level keys)."""

_checks_deferred: ContextVar[bool] = ContextVar("rewardkit_config_checks_deferred", default=False)


class Checked:
    """Base of config dataclasses whose options must fit together: validate() runs when one is made."""

    def __post_init__(self) -> None:
        # parse() builds configs in stages (YAML defaults, then tyro's object); it checks the finished one.
        if not _checks_deferred.get():
            self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the options that do not fit together."""


@dataclasses.dataclass(frozen=True)
class Command:
    """A sub-command: its options, the function that runs them (returns the exit code), and its line in
    `rewardkit --help`."""

    config: type
    run: Callable[[Any], int | None]
    summary: str


# --- YAML ---------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2's numbers: PyYAML reads `1e-4` (no dot) as a string."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))


def load_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value")
    return loaded


def yaml_value(text: str) -> Any:
    """A value written as in a config file: '2e-5' -> 2e-05, 'true' -> True, '[a, b]' -> ['a', 'b']."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid value {text!r}: {err}") from None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _is_flat(hint: Any) -> bool:
    return FLAT in getattr(hint, "__metadata__", ())


def _nested_class(hint: Any) -> type | None:
    """The config class of a nested-config field, else None."""
    inner = typing.get_args(hint)[0] if hasattr(hint, "__metadata__") else hint
    return inner if dataclasses.is_dataclass(inner) else None


def option_names(cls: type) -> list[str]:
    """The keys a YAML mapping for `cls` may hold (a FLAT nested config's keys among them)."""
    names = []
    for name, hint in _hints(cls).items():
        names += option_names(_nested_class(hint)) if _is_flat(hint) else [name]
    return names


def _describe(hint: Any) -> str:
    """A type as a user reads it: 'one of bt, hinge', 'list[float] | None', 'int'."""
    hint = typing.get_args(hint)[0] if hasattr(hint, "__metadata__") else hint
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if len(args) < len(typing.get_args(hint)):  # X | None
        return f"{_describe(args[0])} or null"
    if typing.get_origin(hint) is None and isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _checked_value(hint: Any, value: Any, key: str, source: str) -> Any:
    """`value` if it fits the field's type (an int fits a float, as in Python's typing)."""
    try:
        typeguard.check_type(value, hint, collection_check_strategy=typeguard.CollectionCheckStrategy.ALL_ITEMS)
    except typeguard.TypeCheckError:
        raise ConfigError(f"{source}: option '{key}' expects {_describe(hint)}, got {value!r}") from None
    return value


def _unknown(key: str, known: list[str], source: str, prefix: str) -> ConfigError:
    close = [prefix + k for k in difflib.get_close_matches(key, known, n=3)]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(f"unknown option '{prefix}{key}' in {source}{hint}; valid options"
                       f"{' of ' + prefix.rstrip('.') if prefix else ''}: {', '.join(sorted(known))}")


def from_dict(cls: type, values: dict, source: str = "config", base: Any = None, prefix: str = "") -> Any:
    """A `cls` with the options in `values` (a YAML mapping, nested configs as nested mappings) over the values
    of `base`, or over the class defaults. Unknown keys and values of the wrong type are ConfigErrors naming the
    key. Without `base`, options that have no default and are not in `values` are tyro.MISSING, for flags to
    fill (parse() checks the result once it is complete). `prefix` names a nested config in messages ('train.')."""
    hints = _hints(cls)
    flat = next((name for name, hint in hints.items() if _is_flat(hint)), None)  # at most one per class
    known = option_names(cls)
    own, rest = {}, {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise _unknown(name, known, source, prefix)
        (own if name in hints else rest)[name] = value  # rest: the FLAT config's options
    defaults = base if base is not None else _defaults(cls)
    changes = {}
    for name, value in own.items():
        nested = _nested_class(hints[name])
        if nested is None:
            changes[name] = _checked_value(hints[name], value, prefix + name, source)
        elif isinstance(value, dict):
            changes[name] = from_dict(nested, value, source, getattr(defaults, name), f"{prefix}{name}.")
        else:
            raise ConfigError(f"{source}: option '{prefix}{name}' expects a mapping of its options, got {value!r}")
    if flat is not None:
        changes[flat] = from_dict(_nested_class(hints[flat]), rest, source, getattr(defaults, flat), prefix)
    return dataclasses.replace(defaults, **changes)


def _defaults(cls: type) -> Any:
    """`cls` with its defaults, tyro.MISSING where a field has none (never checked: parse() checks the result)."""
    token = _checks_deferred.set(True)
    try:
        return cls(**{f.name: tyro.MISSING for f in dataclasses.fields(cls)
                      if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING})
    finally:
        _checks_deferred.reset(token)


# --- flags --------------------------------------------------------------------------------------------------

_REGISTRY = ConstructorRegistry()


def _pairs(tokens: list[str]) -> dict[str, float]:
    """{"pairwise": 1.0, "rating": 0.5} from ["pairwise=1", "rating=0.5"] (tyro reports a ValueError as a bad value)."""
    out = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            raise ValueError(f"expected KEY=NUMBER, got {token!r}") from None
    return out


@_REGISTRY.primitive_rule
def _key_value_flags(info: PrimitiveTypeInfo) -> PrimitiveConstructorSpec | None:
    """dict[str, float] options as KEY=VALUE flags."""
    if info.type != dict[str, float]:
        return None
    return PrimitiveConstructorSpec(nargs="*", metavar="KEY=VALUE [KEY=VALUE ...]", instance_from_str=_pairs,
                                    is_instance=lambda x: isinstance(x, dict),
                                    str_from_instance=lambda d: [f"{k}={v:g}" for k, v in d.items()])


def _pop_config_file(args: list[str]) -> tuple[list[str], str | None]:
    """The arguments without `--config FILE` (or `--config=FILE`), and FILE."""
    rest, config_file = [], None
    it = iter(args)
    for arg in it:
        if arg == "--config":
            config_file = next(it, None)
            if config_file is None:
                raise ConfigError("--config needs a YAML file")
        elif arg.startswith("--config="):
            config_file = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest, config_file


def _plain(message: str) -> str:
    """tyro's framed error message as plain lines: the frame, its title, rules and colours dropped. tyro draws
    the frame with box characters, or with spaces and dashes where stdout is not UTF-8."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", message).splitlines()
    if lines and lines[0].startswith(("╭", " ")):
        lines = lines[1:]
    out = []
    for line in lines:
        body = line[2:] if line.startswith(("│ ", "  ")) else line.lstrip("│")
        body = body.rstrip().removesuffix("│").rstrip()
        if body.strip(" ─-╰╯"):
            out.append(body)
    return "\n".join(out)


def _validate_all(config: Any) -> None:
    """Check nested configs first, then the config itself."""
    for f in dataclasses.fields(config):
        if dataclasses.is_dataclass(value := getattr(config, f.name)):
            _validate_all(value)
    if isinstance(config, Checked):
        config.validate()


def parse(cls: type, args: list[str], prog: str = "rewardkit") -> Any:
    """The config of one command from its command-line arguments (and the YAML file of `--config`, if any).
    `--help` prints the help and raises SystemExit(0); every rejected input is a ConfigError."""
    args, config_file = _pop_config_file(list(args))
    description = (inspect.cleandoc(cls.__doc__ or "") + "\n\nEvery option may also come from --config FILE.yaml "
                   "(the same names with underscores; a nested config is a nested mapping); flags override the file.")
    token = _checks_deferred.set(True)
    captured = io.StringIO()
    try:
        default = from_dict(cls, load_yaml(config_file), config_file) if config_file else tyro.MISSING_NONPROP
        with contextlib.redirect_stderr(captured):
            config = tyro.cli(cls, args=args, prog=prog, description=description, default=default,
                              registry=_REGISTRY, config=(tyro.conf.PositionalMetavarFromFieldName,))
    except SystemExit as exit:
        if exit.code:
            raise ConfigError(_plain(captured.getvalue()) or f"invalid arguments for {prog}") from None
        raise
    finally:
        _checks_deferred.reset(token)
    sys.stderr.write(captured.getvalue())  # tyro's warnings, if any
    _validate_all(config)
    return config
