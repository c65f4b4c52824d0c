#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run the whole suite:
# lint (ruff), types (mypy), import contracts (import-linter) and pytest.
# Run as root: the ICMP, network-namespace and PostgreSQL tests need it (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=$(grep -Ev '^\s*(#|$)' scripts/debian-packages.txt | while read -r pkg; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"; done)
  if [ -n "$missing" ]; then
    echo "installing Debian packages: $missing"
    apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
  fi
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev]"

.venv/bin/ruff check netwatch collectors migrations tests benchmarks
.venv/bin/ruff format --check netwatch collectors migrations tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/pytest "$@"
