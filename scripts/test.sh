#!/usr/bin/env bash
# Install everything the test suite needs into .venv (and Debian's chromium for the browser
# tests), check the import contracts and lint, then run the whole suite. Safe to re-run: installs are skipped when satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet -r requirements.txt

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

# Tests never reach a model hub or phone home: everything they load is local.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False
# Layering (ui never imports torch, pose_db's sub-packages only import downward, ...) and lint.
.venv/bin/lint-imports --no-cache
.venv/bin/ruff check .

exec .venv/bin/python -m pytest "$@"
