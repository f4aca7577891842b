#!/usr/bin/env bash
# Command 2: install with the test extras, then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh "[test]"
# The labelling app's browser tests drive Debian's chromium (a build that needs no download at run time).
if ! command -v chromium > /dev/null && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) > /dev/null
fi
.venv/bin/python -m ruff check rewardkit tests bench
exec .venv/bin/python -m pytest "$@"
