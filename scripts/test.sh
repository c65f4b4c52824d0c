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

# Known vulnerabilities in the installed environment (PyPI's advisories). A finding fails CI. An
# advisory service out of reach, or packages it does not know (a private mirror's builds), only
# warn, loudly: CI must not depend on a third party being up, nor pass an audit that did not run.
audit_json=$(mktemp)
.venv/bin/pip-audit --progress-spinner off --skip-editable --format json -o "$audit_json" 2>"$audit_json.log" || true
.venv/bin/python - "$audit_json" <<'PY'
import json, sys
try:
    deps = json.load(open(sys.argv[1]))["dependencies"]
except (OSError, ValueError, KeyError):
    print("WARNING: pip-audit could not run (vulnerability service unreachable?): NOTHING WAS AUDITED", file=sys.stderr)
    sys.exit(0)
vulns = [f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions']) or '?'})" for d in deps for v in d.get("vulns", [])]
skipped = [d["name"] for d in deps if d.get("skip_reason")]
print(f"pip-audit: {len(deps) - len(skipped)} of {len(deps)} packages audited, {len(vulns)} known vulnerabilities")
if skipped:
    print(f"WARNING: pip-audit could not look up {len(skipped)} packages (not on PyPI, or PyPI unreachable): {' '.join(skipped)}", file=sys.stderr)
if vulns:
    print("\n".join(vulns), file=sys.stderr)
    sys.exit(1)
PY
rm -f "$audit_json" "$audit_json.log"

.venv/bin/ruff check netwatch collectors migrations tests benchmarks
.venv/bin/ruff format --check netwatch collectors migrations tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/pytest "$@"
