#!/usr/bin/env bash
# Creates the venv with the PyPI clients of tests/server/requirements.txt (openai, mistralai,
# websockets) for test_server_clients. Needs network access to PyPI; CI may call it with `|| true`
# and the test then SKIPs. The venv is VOX_CLIENT_VENV or tests/server/.venv (git-ignored).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${VOX_CLIENT_VENV:-$here/.venv}
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --disable-pip-version-check -q --timeout 30 -r "$here/requirements.txt"
"$venv/bin/python" -c 'import openai, mistralai, websockets; print("clients:", "openai", openai.__version__, "mistralai", __import__("importlib.metadata").metadata.version("mistralai"), "websockets", websockets.__version__)'
echo "venv ready: $venv"
