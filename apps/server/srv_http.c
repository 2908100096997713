/* srv_http.c - OWNED BY HELPER srvhttp: POST /v1/audio/transcriptions, POST /v1/audio/speech,
 * WS /v1/audio/speech/stream, GET / (page). This is the placeholder from helper srv: each
 * route answers 501 (or closes the WebSocket) until srvhttp replaces this file. Routes are
 * plain entries of srv_routes_http (see srv_route in server.h). */
#include <string.h>

#include "server.h"

static int not_yet(srv_conn *c) {
    return srv_http_error(c, 501, "not_implemented", "endpoint not implemented yet");
}

static int not_yet_ws(srv_conn *c) {
    const char *m = "{\"type\":\"error\",\"error\":\"endpoint not implemented yet\"}";
    return srv_ws_send_close(c, m, strlen(m), 1011);
}

const srv_route srv_routes_http[] = {
    {0, "POST", "/v1/audio/transcriptions", not_yet, NULL, NULL, NULL, NULL, NULL},
    {0, "POST", "/v1/audio/speech", not_yet, NULL, NULL, NULL, NULL, NULL},
    {1, "GET", "/v1/audio/speech/stream", not_yet_ws, NULL, NULL, NULL, NULL, NULL},
    {0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
