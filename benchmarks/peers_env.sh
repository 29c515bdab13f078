#!/usr/bin/env bash
# The benchmark environment for the peers section (benchmarks/peers.py): .venvs/bench, with unillm
# installed editable plus the peers it is compared against. The peers are installed here only,
# never as unillm dependencies (pyproject.toml does not name them).
#
#   bash benchmarks/peers_env.sh                                     # create or update .venvs/bench
#   .venvs/bench/bin/python benchmarks/run.py --only peers --output /tmp/peers.md
#
# What goes in:
#   - unillm editable with its test extra (the in-process fake needs httpx; the extra also
#     brings opentelemetry-sdk and opentelemetry-instrumentation-openai-v2)
#   - litellm (its releases require openai>=2.20,<4); openai is held to 2.x so that the raw SDK,
#     unillm and LiteLLM all run on the same HTTP library (httpx): openai 3.x runs on httpx2,
#     while LiteLLM's own handlers stay on httpx.
#   - opentelemetry-instrumentation-openai-v2 + opentelemetry-sdk (the OTel OpenAI instrumentation)
#   - opentelemetry-instrumentation-openai: OpenLLMetry's OpenAI instrumentation, the one that
#     traceloop-sdk's Traceloop.init() turns on for openai, measured on its own with our tracer
#     provider. traceloop-sdk itself (WITH_OPENLLMETRY=1) is left out by default: it resolves and
#     installs, but brings some 40 instrumentations (requests, urllib3, threading, ...) and
#     Traceloop.init() wants an exporter endpoint or API key; the benchmark does not use it.
# Needs only python3 (>= 3.10) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
venv=".venvs/bench"
if [ ! -x "$venv/bin/python" ]; then
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
peers=(litellm opentelemetry-instrumentation-openai-v2 opentelemetry-sdk opentelemetry-instrumentation-openai)
if [ "${WITH_OPENLLMETRY:-0}" = 1 ]; then
  peers+=(traceloop-sdk)
fi
echo "== .venvs/bench: installing .[test] ${peers[*]} 'openai>=2.20,<3'"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]" "${peers[@]}" "openai>=2.20,<3"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version

for name in ("openai", "httpx", "litellm", "opentelemetry-sdk", "opentelemetry-instrumentation-openai-v2",
             "opentelemetry-instrumentation-openai"):
    print(f"   {name} {version(name)}")
PY
