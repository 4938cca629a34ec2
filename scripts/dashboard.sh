#!/usr/bin/env bash
# Install what the product needs (first time only) and start the dashboard on the local backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh requirements.txt
exec .venv/bin/streamlit run dashboard.py "$@"
