# vox_server.sh - sourced by the server tests: vox_server_start LOG ARGS... starts
# $VOX_BIN/vox-server ARGS --port 0 in the background, sets SPID to its pid and PORT to the port
# it prints once it listens; exits the test (status 1, the log shown) if it does not start.
vox_server_start() {
    local log=$1; shift
    "$VOX_BIN/vox-server" --port 0 "$@" 2>"$log" &
    SPID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$log")
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: vox-server did not start:"; cat "$log"; kill "$SPID" 2>/dev/null; exit 1
}
