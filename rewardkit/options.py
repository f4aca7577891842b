"""Options that several commands share, declared once: their type, choices and `--help` text.

Use one as a config field's type, with the command's default: `precision: Precision = "fp32"`. The help given
here is what `--help` shows; a field's own docstring would be ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from tyro.conf import arg

from rewardkit.model.precision import PRECISIONS

Precision = Annotated[Literal[PRECISIONS], arg(
    help="fp32, bf16 (autocast: fp32 weights, bf16 matmuls), or auto (bf16 where a timed matmul shows it clearly "
         "faster on this machine, else fp32; measured once and cached)")]

Compile = Annotated[bool, arg(
    help="torch.compile the backbone for inference (dynamic shapes: one compile for all batch shapes; a slower "
         "start, faster steady scoring; needs a C++ compiler on CPU)")]

Threads = Annotated[int, arg(help="CPU threads for torch (0 = torch's default)")]

ScoringBatchSize = Annotated[int, arg(help="sequences per forward pass (sorted by length)")]

Progress = Annotated[bool, arg(help="show progress bars")]
