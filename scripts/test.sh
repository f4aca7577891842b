#!/usr/bin/env bash
# Command 2: install with the test extras, then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh "[test]"
.venv/bin/python -m ruff check rewardkit tests bench
exec .venv/bin/python -m pytest "$@"
