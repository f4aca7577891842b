"""The `rewardkit` command: one sub-command per job, each configured by one typed dataclass."""

from __future__ import annotations

import argparse
import sys

from rewardkit.config import ConfigError
from rewardkit.data.records import DataError
from rewardkit.model.backbone import ModelError

DESCRIPTION = """Train, evaluate and use reward models from human or AI feedback.

Start with `rewardkit demo` (no arguments: built-in data, the bundled MiniLM backbone, a few minutes
on a laptop CPU), then `rewardkit data synth`, `rewardkit train`, `rewardkit score`, `rewardkit eval`."""


def build_parser() -> argparse.ArgumentParser:
    from rewardkit.data import cli as data_cli
    from rewardkit.eval import cli as eval_cli
    from rewardkit.model import cli as model_cli
    from rewardkit.serve import cli as serve_cli
    from rewardkit.train import cli as train_cli

    parser = argparse.ArgumentParser(prog="rewardkit", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rewardkit {__import__('rewardkit').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_cli.register(sub)
    train_cli.register(sub)
    model_cli.register(sub)
    eval_cli.register(sub)
    serve_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, ConfigError, ModelError) as err:
        print(f"rewardkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rewardkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
