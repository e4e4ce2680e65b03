#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole test suite, one worker per core (pytest-xdist):
# most tests wait on a real daemon, a browser or a subprocess, so two workers on two cores halve
# the wall time. GENRE_DAEMON_TEST_WORKERS=0 runs it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -n "${GENRE_DAEMON_TEST_WORKERS:-auto}" "$@"
