"""The `rewardkit` command: one sub-command per job, each configured by one typed dataclass (rewardkit.config)."""

from __future__ import annotations

import difflib
import sys

from rewardkit.config import Command, ConfigError, parse
from rewardkit.errors import RewardkitError
from rewardkit.model.machine import limit_kernel_cache

DESCRIPTION = """Train, evaluate and use reward models from human or AI feedback.

Start with `rewardkit demo` (no arguments: built-in data, the bundled MiniLM backbone, a few minutes
on a laptop CPU), then `rewardkit data synth`, `rewardkit train`, `rewardkit score`, `rewardkit eval`.
`rewardkit COMMAND --help` explains every option of a command."""


def commands() -> dict[str, Command]:
    """Every sub-command by its name: 'train', 'data synth', ..."""
    from rewardkit.bon import cli as bon_cli
    from rewardkit.control import cli as control_cli
    from rewardkit.data import cli as data_cli
    from rewardkit.eval import cli as eval_cli
    from rewardkit.judge import cli as judge_cli
    from rewardkit.label import cli as label_cli
    from rewardkit.model import cli as model_cli
    from rewardkit.serve import cli as serve_cli
    from rewardkit.train import cli as train_cli

    table: dict[str, Command] = {}
    for module in (data_cli, train_cli, model_cli, eval_cli, judge_cli, bon_cli, control_cli, label_cli, serve_cli):
        module.register(table)
    return table


def overview(table: dict[str, Command], group: str = "") -> str:
    """The help of `rewardkit` (every command) or of a group such as `rewardkit data`."""
    names = [name for name in table if name.startswith(group)]
    width = max(len(name) for name in names)
    lines = [f"usage: rewardkit {group}COMMAND [OPTIONS]", "", DESCRIPTION, "", "commands:"]
    lines += [f"  {name:<{width}}  {table[name].summary}" for name in names]
    return "\n".join(lines)


def find_command(table: dict[str, Command], argv: list[str]) -> tuple[str, list[str]]:
    """The command named at the start of `argv` (a group's takes two words) and the arguments after it."""
    for words in (2, 1):
        name = " ".join(argv[:words])
        if len(argv) >= words and name in table:
            return name, argv[words:]
    wanted = " ".join(argv[:2]) if argv[0] in {n.split()[0] for n in table if " " in n} else argv[0]
    close = difflib.get_close_matches(wanted, list(table), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"unknown command '{wanted}'{hint}; commands: {', '.join(table)}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (2 for a configuration, data or model error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    limit_kernel_cache()  # before any command multiplies a matrix: oneDNN reads the cap once
    table = commands()
    if argv[:1] == ["--version"]:
        print(f"rewardkit {__import__('rewardkit').__version__}")
        return 0
    group = argv[0] + " " if argv and any(name.startswith(argv[0] + " ") for name in table) else ""
    rest = argv[1:] if group else argv
    if not rest or rest[0] in ("-h", "--help"):
        print(overview(table, group), file=sys.stdout if rest else sys.stderr)
        return 0 if rest else 2
    try:
        name, args = find_command(table, argv)
        command = table[name]
        return int(command.run(parse(command.config, args, prog=f"rewardkit {name}")) or 0)
    except RewardkitError as err:
        print(f"rewardkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rewardkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
