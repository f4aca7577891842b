#!/usr/bin/env bash
# Command 1: install, then run the main job on built-in defaults (data, MiniLM reward model, eval, scores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/rewardkit demo "$@"
