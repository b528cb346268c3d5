# Shared by scripts/lab and scripts/test: make .venv and install coursekit into it.
# Re-running skips the install when pyproject.toml and constraints.txt are unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSEKIT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

ensure_venv() {
    local extras="$1"
    if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "coursekit needs Python >= 3.10; set PYTHON=/path/to/python3.x" >&2
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating $VENV"
        "$PY" -m venv "$VENV"
    fi
    local stamp="$VENV/.coursekit-install-stamp"
    local want
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16) $extras"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import coursekit' 2>/dev/null; then
        echo "==> $VENV is up to date (delete $stamp to force a reinstall)"
        return
    fi
    echo "==> installing coursekit[$extras] into $VENV (first time: a few minutes; torch is large)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[$extras]"
    echo "$want" > "$stamp"
}
