/* srv_ws_asr.c - WebSocket ASR endpoints (placeholder, filled in next). */
#include "server.h"

const srv_route srv_routes_asr_ws[] = {
    {0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
