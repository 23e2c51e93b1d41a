# Sourced by the scripts in this folder: make .venv hold Comity (editable) with the
# extras named in $1 ("" or "test"), installing or updating it when missing or when
# pyproject.toml changed since the last install. Needs only python3. pip's output
# goes to stderr: a script's stdout is its own (scripts/bench --json > FILE).
comity_venv() {
    local extras=${1:-} python=${PYTHON:-python3} spec=. stamp
    [ -n "$extras" ] && spec=".[$extras]"
    stamp=".venv/.installed-${extras:-core}-$(sha256sum pyproject.toml | cut -c1-16)"
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    if [ ! -e "$stamp" ] || [ ! -x .venv/bin/comity ]; then
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
        .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 | grep -v "is ignored" >&2 || true
        .venv/bin/python -c "import ledger, consensus, node, api" \
            || { echo "$0: installing Comity into .venv failed" >&2; exit 1; }
        # The console's fallback signer (docs/CONSOLE.md "Keys and the store"), when npm exists.
        scripts/console-vendor >&2 || echo "$0: the console's fallback signer was not installed" >&2
        touch "$stamp"
    fi
}
