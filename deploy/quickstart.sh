#!/usr/bin/env bash
# The README's first command: set this machine up, then run Valence end to end on the
# embedded defaults: a local Apache Kafka broker, the shipped model, a worker, and the
# sample editor events, whose scored events are printed as they arrive.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/.ci/setup"
# shellcheck source=../.ci/env.sh
source "$ROOT/.ci/env.sh"
cd "$ROOT"
exec "$VENV_PYTHON" -m stream.cli demo "$@"
