#!/usr/bin/env bash
# Runs test_clients.py with the PyPI clients' venv (tests/server/setup_clients.sh); SKIP (77) when
# the venv is absent, since CI does not need PyPI.
here=$(cd "$(dirname "$0")" && pwd)
venv=${VOX_CLIENT_VENV:-$here/.venv}
if [ ! -x "$venv/bin/python" ]; then
    echo "SKIP: no client venv at $venv (run tests/server/setup_clients.sh, needs PyPI)"
    exit 77
fi
if ! "$venv/bin/python" -c 'import openai, mistralai.client, websockets' 2>/dev/null; then
    echo "SKIP: the venv at $venv lacks openai/mistralai/websockets (run tests/server/setup_clients.sh)"
    exit 77
fi
exec timeout 110 "$venv/bin/python" "$here/test_clients.py"
