#!/usr/bin/env bash
# The one command for unillm's benchmarks: writes docs/benchmarks.md.
#
#   bash benchmarks/run.sh              # every section (~8 minutes on 2 cores, once the environments exist)
#   bash benchmarks/run.sh --quick      # a smoke check; --only SECTION runs one section (printed)
#
# Environments (created when missing, under .venvs/; needs only python3 >= 3.10 and PyPI):
#   .venvs/openai3  unillm editable with its test and dashboard extras, openai 3.x (as `bash scripts/test` makes it)
#   .venvs/bench    the peers (LiteLLM, the OTel and OpenLLMetry instrumentations) on openai 2.x
#                   (benchmarks/peers_env.sh); never unillm dependencies
# run.py runs the peer sections (peers, failover, concurrency) with .venvs/bench's interpreter
# and every other section with .venvs/openai3's, and writes one file.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
main=".venvs/openai3"
if ! "$main/bin/python" -c "import unillm, openai, streamlit, httpx" > /dev/null 2>&1; then
  echo "== $main: installing .[test,dashboard] 'openai>=3,<4'"
  [ -x "$main/bin/python" ] || "$PYTHON" -m venv "$main"
  "$main/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test,dashboard]" "openai>=3,<4"
fi
if ! .venvs/bench/bin/python -c "import litellm, opentelemetry.instrumentation.openai_v2" > /dev/null 2>&1; then
  bash benchmarks/peers_env.sh
fi
exec "$main/bin/python" benchmarks/run.py "$@"
