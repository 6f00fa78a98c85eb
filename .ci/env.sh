# shellcheck shell=bash
# Sourced by .ci/run and .ci/test (bash): where this checkout's CI virtualenv lives.
# The venv is keyed by the sha256 of requirements.lock, so a changed lock gets a fresh venv
# and an unchanged one is reused across runs (and clones) without downloading anything.

VALENCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK_FILE="$VALENCE_ROOT/requirements.lock"
if [[ ! -f "$LOCK_FILE" ]]; then
    echo "error: $LOCK_FILE is missing: the CI virtualenv is built from it" >&2
    exit 1
fi
LOCK_HASH="$(sha256sum "$LOCK_FILE" | cut -d' ' -f1)"
VENV_DIR="$HOME/.cache/valence/venvs/$LOCK_HASH"
VENV_PYTHON="$VENV_DIR/bin/python"
# Written last when building the venv: a venv without it is half-built and is rebuilt.
VENV_MARKER="$VENV_DIR/.valence-complete"
export VALENCE_ROOT LOCK_FILE LOCK_HASH VENV_DIR VENV_PYTHON VENV_MARKER
