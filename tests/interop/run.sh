#!/usr/bin/env bash
# Starts `switchboard serve` on a free loopback port, runs interop.py against it with Python's `websockets`
# (installed into a venv here), and stops the server. Usage: tests/interop/run.sh [path/to/switchboard]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-"$here/../../target/debug/switchboard"}
venv=${INTEROP_VENV:-"$here/../../target/interop-venv"}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'websockets>=12'
fi
out=$(mktemp)
"$bin" serve --bind 127.0.0.1:0 >"$out" 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do
  grep -q 'listening on' "$out" && break
  sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$out" | head -n 1)
[ -n "$addr" ] || { echo "interop: the server did not start"; exit 1; }
timeout 90 "$venv/bin/python" "$here/interop.py" "$addr"
