/* srv_core.c - the network core: one lws context, one protocol handling HTTP and WebSocket,
 * routing by exact path to the route tables of server.h, per-connection output queues with a
 * byte cap (slow clients are dropped), WebSocket message assembly with a size cap, idle
 * timeout, and the drain on SIGTERM. Runs on the main thread only. */
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_internal.h"

/* One queued output item. data[] is preceded by LWS_PRE bytes lws may use for framing. */
enum { Q_WS_TEXT, Q_WS_BIN, Q_HTTP_HDR, Q_HTTP_BODY };
typedef struct qmsg {
    struct qmsg *next;
    size_t n, off;
    int kind;
    unsigned char buf[]; /* LWS_PRE + n */
} qmsg;

typedef struct srv_outq {
    qmsg *head, *tail;
    size_t bytes;
} srv_outq;

enum { CLOSE_NONE = 0, CLOSE_AFTER_FLUSH = 1, CLOSE_NOW = 2 };

static const srv_route *const route_tables[] = {srv_routes_status, srv_routes_asr_ws,
                                                srv_routes_http};

static const srv_route *find_route(const char *method, const char *path, int ws) {
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++)
        for (const srv_route *r = route_tables[t]; r->path; r++)
            if (r->ws == ws && !strcmp(r->path, path) && (ws || !strcmp(r->method, method)))
                return r;
    return NULL;
}

static int path_known(const char *path) {
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++)
        for (const srv_route *r = route_tables[t]; r->path; r++)
            if (!strcmp(r->path, path)) return 1;
    return 0;
}

/* ---- output queue ---------------------------------------------------------------------------- */

static void outq_free(srv_conn *c) {
    if (!c->out) return;
    for (qmsg *m = c->out->head, *nx; m; m = nx) {
        nx = m->next;
        free(m);
    }
    free(c->out);
    c->out = NULL;
}

static int enqueue(srv_conn *c, int kind, const void *p1, size_t n1, const void *p2, size_t n2,
                   const void *p3, size_t n3) {
    if (c->closing == CLOSE_NOW) return -1;
    if (!c->out && !(c->out = calloc(1, sizeof *c->out))) return -1;
    size_t n = n1 + n2 + n3;
    if (c->out->bytes + n > c->S->cfg.max_out_queue && kind != Q_HTTP_HDR) {
        /* the client does not read fast enough: drop it rather than grow without bound */
        srv_count_error(c->S, SRV_ERR_SLOW_CLIENT);
        if (c->S->cfg.verbose)
            fprintf(stderr, "vox-server: %s: client too slow (%zu bytes queued), dropped\n", c->uri,
                    c->out->bytes);
        c->closing = CLOSE_NOW;
        lws_callback_on_writable(c->wsi);
        return -1;
    }
    qmsg *m = malloc(sizeof *m + LWS_PRE + n + 1);
    if (!m) return -1;
    m->next = NULL;
    m->n = n;
    m->off = 0;
    m->kind = kind;
    unsigned char *d = m->buf + LWS_PRE;
    if (n1) memcpy(d, p1, n1);
    if (n2) memcpy(d + n1, p2, n2);
    if (n3) memcpy(d + n1 + n2, p3, n3);
    if (c->out->tail)
        c->out->tail->next = m;
    else
        c->out->head = m;
    c->out->tail = m;
    c->out->bytes += n;
    lws_callback_on_writable(c->wsi);
    return 0;
}

size_t srv_conn_queued(const srv_conn *c) {
    return c->out ? c->out->bytes : 0;
}

int srv_ws_send(srv_conn *c, const void *p, size_t n, int binary) {
    if (c->closing) return -1;
    return enqueue(c, binary ? Q_WS_BIN : Q_WS_TEXT, p, n, NULL, 0, NULL, 0);
}

int srv_ws_send_close(srv_conn *c, const void *p, size_t n, int close_status) {
    if (c->closing) return -1;
    int rc = p ? enqueue(c, Q_WS_TEXT, p, n, NULL, 0, NULL, 0) : 0;
    if (c->closing != CLOSE_NOW) c->closing = CLOSE_AFTER_FLUSH;
    c->close_status = close_status;
    lws_callback_on_writable(c->wsi);
    return rc;
}

void srv_conn_pump_later(srv_conn *c) {
    c->pump_pending = 1;
    lws_cancel_service(c->S->ctx);
}

void srv_conn_rx_pause(srv_conn *c, int pause) {
    if (c->rx_paused == !!pause) return;
    c->rx_paused = !!pause;
    lws_rx_flow_control(c->wsi, pause ? 0 : 1);
}

void srv_conn_pump_after(srv_conn *c, int ms) {
    lws_set_timer_usecs(c->wsi, (lws_usec_t)ms * 1000);
}

/* ---- HTTP responses -------------------------------------------------------------------------- */

static int http_headers(srv_conn *c, int status, const char *ctype, lws_filepos_t len,
                        int chunked) {
    unsigned char hb[LWS_PRE + 1024], *start = hb + LWS_PRE, *p = start, *end = hb + sizeof hb;
    if (c->http_status_sent) return -1;
    if (lws_add_http_common_headers(c->wsi, (unsigned)status, ctype, len, &p, end)) return -1;
    if (chunked && lws_add_http_header_by_token(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
                                                (const unsigned char *)"chunked", 7, &p, end))
        return -1;
    if (lws_add_http_header_by_name(c->wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (lws_finalize_http_header(c->wsi, &p, end)) return -1;
    c->http_status_sent = status;
    c->http_chunked = chunked;
    return enqueue(c, Q_HTTP_HDR, start, (size_t)(p - start), NULL, 0, NULL, 0);
}

int srv_http_reply(srv_conn *c, int status, const char *ctype, const void *body, size_t n) {
    if (http_headers(c, status, ctype, n, 0)) return -1;
    c->http_done = 1;
    if (n && enqueue(c, Q_HTTP_BODY, body, n, NULL, 0, NULL, 0)) return -1;
    lws_callback_on_writable(c->wsi);
    return 0;
}

int srv_http_stream_start(srv_conn *c, int status, const char *ctype) {
    return http_headers(c, status, ctype, LWS_ILLEGAL_HTTP_CONTENT_LEN, 1);
}

int srv_http_stream_send(srv_conn *c, const void *p, size_t n) {
    if (!c->http_chunked || c->http_done) return -1;
    if (!n) return 0;
    char hd[32];
    int hl = snprintf(hd, sizeof hd, "%zx\r\n", n);
    return enqueue(c, Q_HTTP_BODY, hd, (size_t)hl, p, n, "\r\n", 2);
}

int srv_http_stream_end(srv_conn *c) {
    if (!c->http_chunked || c->http_done) return -1;
    c->http_done = 1;
    return enqueue(c, Q_HTTP_BODY, "0\r\n\r\n", 5, NULL, 0, NULL, 0);
}

int srv_http_error(srv_conn *c, int status, const char *type, const char *message) {
    srv_buf b = {0};
    SRV_BUF_LIT(&b, "{\"error\":{\"message\":");
    srv_buf_json_str(&b, message, strlen(message));
    SRV_BUF_LIT(&b, ",\"type\":");
    srv_buf_json_str(&b, type, strlen(type));
    srv_buf_printf(&b, ",\"code\":%d}}", status);
    int rc = b.oom ? -1 : srv_http_reply(c, status, "application/json", b.p, b.len);
    srv_buf_free(&b);
    return rc;
}

/* ---- request info -----------------------------------------------------------------------------
 */

const char *srv_conn_path(const srv_conn *c) {
    return c->uri;
}

int srv_conn_header(srv_conn *c, const char *name, char *buf, size_t cap) {
    static const struct {
        const char *name;
        enum lws_token_indexes tok;
    } known[] = {{"content-type", WSI_TOKEN_HTTP_CONTENT_TYPE},
                 {"content-length", WSI_TOKEN_HTTP_CONTENT_LENGTH},
                 {"authorization", WSI_TOKEN_HTTP_AUTHORIZATION},
                 {"host", WSI_TOKEN_HOST},
                 {"origin", WSI_TOKEN_ORIGIN},
                 {"user-agent", WSI_TOKEN_HTTP_USER_AGENT},
                 {"accept", WSI_TOKEN_HTTP_ACCEPT},
                 {"transfer-encoding", WSI_TOKEN_HTTP_TRANSFER_ENCODING}};
    if (!cap) return -1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(known[i].name, name)) {
            if (lws_hdr_total_length(c->wsi, known[i].tok) <= 0) return -1;
            int n = lws_hdr_copy(c->wsi, buf, (int)cap, known[i].tok);
            return n < 0 ? -1 : n;
        }
    char key[128];
    snprintf(key, sizeof key, "%s:", name);
    int len = lws_hdr_custom_length(c->wsi, key, (int)strlen(key));
    if (len < 0) return -1;
    int n = lws_hdr_custom_copy(c->wsi, buf, (int)cap, key, (int)strlen(key));
    return n < 0 ? -1 : n;
}

int srv_conn_query(srv_conn *c, const char *key, char *buf, size_t cap) {
    char name[128];
    snprintf(name, sizeof name, "%s=", key);
    const char *v = lws_get_urlarg_by_name(c->wsi, name, buf, (int)cap);
    if (!v) return -1;
    /* lws returns a pointer into buf after "name=" */
    size_t off = (size_t)(v - buf), n = strlen(v);
    memmove(buf, v, n + 1);
    (void)off;
    return (int)n;
}

/* ---- connection list ----------------------------------------------------------------------------
 */

static void conn_link(srv *S, srv_conn *c) {
    c->next = S->conns;
    c->prev = NULL;
    if (S->conns) S->conns->prev = c;
    S->conns = c;
    S->n_conns++;
}

static void conn_unlink(srv *S, srv_conn *c) {
    if (c->prev)
        c->prev->next = c->next;
    else if (S->conns == c)
        S->conns = c->next;
    else
        return; /* not linked */
    if (c->next) c->next->prev = c->prev;
    c->next = c->prev = NULL;
    S->n_conns--;
}

static void conn_gone(srv_conn *c) {
    if (!c->S) return;
    if (c->route && c->route->close) c->route->close(c);
    c->route = NULL;
    conn_unlink(c->S, c);
    outq_free(c);
    free(c->rx);
    c->rx = NULL;
    c->S = NULL;
}

static void conn_init(srv *S, srv_conn *c, struct lws *wsi, const char *uri) {
    memset(c, 0, sizeof *c);
    c->wsi = wsi;
    c->S = S;
    c->last_rx = vox_time_now();
    snprintf(c->uri, sizeof c->uri, "%s", uri);
    conn_link(S, c);
}

/* ---- writing ------------------------------------------------------------------------------------
 */

/* Write the head of the queue (one item, or 32 KiB of an HTTP body). Returns -1 to close. */
static int write_some(srv_conn *c) {
    if (c->closing == CLOSE_NOW) return -1;
    qmsg *m = c->out ? c->out->head : NULL;
    if (m) {
        unsigned char *d = m->buf + LWS_PRE + m->off;
        size_t left = m->n - m->off, k = left;
        enum lws_write_protocol wp;
        switch (m->kind) {
        case Q_WS_TEXT: wp = LWS_WRITE_TEXT; break;
        case Q_WS_BIN: wp = LWS_WRITE_BINARY; break;
        case Q_HTTP_HDR: wp = LWS_WRITE_HTTP_HEADERS; break;
        default:
            wp = LWS_WRITE_HTTP;
            if (k > 32768) k = 32768;
            break;
        }
        /* HTTP body pieces past the first need LWS_PRE space before them: copy down */
        if (m->off && m->kind == Q_HTTP_BODY) memmove(m->buf + LWS_PRE, d, k), d = m->buf + LWS_PRE;
        int w = lws_write(c->wsi, d, k, wp);
        if (w < 0) return -1;
        if (m->kind == Q_HTTP_BODY && k < left) {
            /* keep the rest: move it to the front so the next write has LWS_PRE headroom */
            memmove(m->buf + LWS_PRE, m->buf + LWS_PRE + k, left - k);
            m->n = left - k;
            m->off = 0;
            c->out->bytes -= k;
        } else {
            c->out->head = m->next;
            if (!m->next) c->out->tail = NULL;
            c->out->bytes -= m->n - m->off;
            free(m);
        }
        c->last_rx = vox_time_now();
    }
    if (c->out && c->out->head) {
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->http_status_sent && c->http_done) {
        /* the response is complete: the request is over (route close() now), the connection
         * may carry the next one (lws may reuse or clear this memory) */
        int drop = c->closing || !c->body_done; /* an unread body would be the next request */
        struct lws *wsi = c->wsi;
        conn_gone(c);
        if (drop) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    if (c->closing == CLOSE_AFTER_FLUSH) {
        lws_close_reason(c->wsi, (enum lws_close_status)(c->close_status ? c->close_status : 1000),
                         NULL, 0);
        return -1;
    }
    return 0;
}

/* ---- the protocol callback ----------------------------------------------------------------------
 */

static void pump_ready(srv *S) {
    srv_conn *c;
    while ((c = srv_next_ready(S)))
        if (c->route && c->route->pump && c->closing != CLOSE_NOW) c->route->pump(c);
    for (c = S->conns; c; c = c->next)
        if (c->pump_pending || c->rx_paused) {
            c->pump_pending = 0;
            if (c->route && c->route->pump) c->route->pump(c);
        }
    /* idle timeout: no input from and no output to the client for idle_timeout seconds */
    double now = vox_time_now();
    for (c = S->conns; c; c = c->next)
        if (c->route && c->route->ws && !c->closing && S->cfg.idle_timeout > 0 &&
            now - c->last_rx > S->cfg.idle_timeout) {
            if (S->cfg.verbose)
                fprintf(stderr, "vox-server: %s: idle for %.0f s, closing\n", c->uri,
                        now - c->last_rx);
            srv_ws_send_close(c, NULL, 0, 1001);
        }
}

static int http_method(struct lws *wsi, const char **m) {
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
        *m = "GET";
    else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
        *m = "POST";
    else if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0)
        *m = "HEAD";
    else if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
        *m = "OPTIONS";
    else
        *m = "OTHER";
    return 0;
}

static int ws_rx(srv_conn *c, const void *in, size_t len) {
    srv *S = c->S;
    struct lws *wsi = c->wsi;
    c->last_rx = vox_time_now();
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_binary = lws_frame_is_binary(wsi);
        c->rx_skip = 0;
    }
    int final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (c->closing || c->rx_skip) return 0;
    if (c->rx_len + len > S->cfg.max_message) {
        /* refuse without buffering the rest: report, drop what we have, discard the remainder */
        c->rx_skip = 1;
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = c->rx_len = 0;
        srv_count_error(S, SRV_ERR_LIMIT);
        if (c->route->oversize) c->route->oversize(c, S->cfg.max_message);
        srv_ws_send_close(c, NULL, 0, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
        return 0;
    }
    if (final && c->rx_len == 0) /* whole message in one piece: no copy */
        return c->route->data ? c->route->data(c, in, len, c->rx_binary) : 0;
    if (c->rx_len + len + 1 > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len + 1)
            cap *= 2;
        if (cap > S->cfg.max_message + 1) cap = S->cfg.max_message + 1;
        unsigned char *nr = realloc(c->rx, cap);
        if (!nr) return -1;
        c->rx = nr;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!final) return 0;
    size_t n = c->rx_len;
    c->rx_len = 0;
    int rc = c->route->data ? c->route->data(c, c->rx, n, c->rx_binary) : 0;
    if (c->rx_cap > 65536) { /* do not keep a large buffer around */
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    return rc;
}

static int body_too_large(srv_conn *c) {
    char msg[128];
    snprintf(msg, sizeof msg, "request body larger than --max-message (%zu bytes)",
             c->S->cfg.max_message);
    srv_count_error(c->S, SRV_ERR_LIMIT);
    c->closing = CLOSE_AFTER_FLUSH;
    return srv_http_error(c, 413, "invalid_request_error", msg);
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    srv_conn *c = user;
    struct lws_context *ctx = lws_get_context(wsi);
    srv *S = ctx ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (S) pump_ready(S);
        return 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* a WebSocket upgrade: refuse unknown paths here (HTTP 403 from lws) */
        char uri[512];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0) return -1;
        if (!find_route("GET", uri, 1)) {
            if (S->cfg.verbose) fprintf(stderr, "vox-server: no WebSocket endpoint %s\n", uri);
            return -1;
        }
        return 0;
    }

    case LWS_CALLBACK_ESTABLISHED: {
        char uri[512] = "";
        lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
        conn_init(S, c, wsi, uri);
        c->route = find_route("GET", uri, 1);
        pthread_mutex_lock(&S->met.mu);
        S->met.ws_connections++;
        pthread_mutex_unlock(&S->met.mu);
        if (!c->route) return -1;
        if (S->draining) {
            const char *m = "{\"type\":\"error\",\"error\":\"server is shutting down\","
                            "\"code\":\"server_shutting_down\"}";
            srv_ws_send_close(c, m, strlen(m), 1001);
            c->route = NULL;
            return 0;
        }
        if (c->route->open && c->route->open(c)) return -1;
        return 0;
    }

    case LWS_CALLBACK_TIMER:
        if (c && c->S && c->route && c->route->pump && c->closing != CLOSE_NOW)
            return c->route->pump(c) && c->closing == CLOSE_NOW ? -1 : 0;
        return 0;

    case LWS_CALLBACK_RECEIVE:
        if (!c || !c->S || !c->route) return 0;
        return ws_rx(c, in, len) ? -1 : 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!c || !c->S) return 0;
        return write_some(c);

    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (c && c->S) conn_gone(c);
        return 0;

    case LWS_CALLBACK_HTTP: {
        const char *method;
        http_method(wsi, &method);
        /* keep-alive: the next request on a connection reuses its user memory */
        if (c->S) conn_gone(c);
        conn_init(S, c, wsi, (const char *)in);
        c->body_done = strcmp(method, "POST") != 0;
        pthread_mutex_lock(&S->met.mu);
        S->met.http_requests++;
        pthread_mutex_unlock(&S->met.mu);
        const srv_route *r = find_route(method, c->uri, 0);
        if (!r) {
            if (path_known(c->uri))
                return srv_http_error(c, 405, "invalid_request_error",
                                      "method not allowed for this path");
            char msg[600];
            snprintf(msg, sizeof msg, "no endpoint %s %s", method, c->uri);
            return srv_http_error(c, 404, "not_found", msg);
        }
        if (S->draining && strcmp(method, "GET")) {
            c->closing = CLOSE_AFTER_FLUSH;
            return srv_http_error(c, 503, "unavailable", "server is shutting down");
        }
        char cl[32];
        if (srv_conn_header(c, "content-length", cl, sizeof cl) > 0 &&
            strtoull(cl, NULL, 10) > S->cfg.max_message) {
            return body_too_large(c);
        }
        c->route = r;
        if (r->open && r->open(c)) return -1;
        /* a GET is complete now; a POST waits for its body */
        return 0;
    }

    case LWS_CALLBACK_HTTP_BODY:
        if (!c || !c->S || !c->route || c->http_status_sent) return 0;
        c->body_len += (int64_t)len;
        c->last_rx = vox_time_now();
        if ((size_t)c->body_len > S->cfg.max_message) {
            return body_too_large(c);
        }
        return c->route->data && c->route->data(c, in, len, 1) ? -1 : 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c && c->S) c->body_done = 1;
        if (!c || !c->S || !c->route || c->http_status_sent) return 0;
        return c->route->body_end && c->route->body_end(c) ? -1 : 0;

    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- lifecycle
 * ------------------------------------------------------------------------------------ */

static const struct lws_protocols protocols[] = {
    {"vox", cb, sizeof(srv_conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int srv_net_start(srv *S, vox_error *err) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = S->cfg.port ? S->cfg.port : CONTEXT_PORT_NO_LISTEN_SERVER;
    info.iface = S->cfg.host;
    info.protocols = protocols;
    info.user = S;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.timeout_secs = 30;
    if (!S->cfg.port) info.port = 0; /* 0 = pick a free port */
    S->ctx = lws_create_context(&info);
    if (!S->ctx)
        return vox_set_error(err, VOX_ERR_IO, "cannot listen on %s:%d (address in use?)",
                             S->cfg.host, S->cfg.port);
    struct lws_vhost *vh = lws_get_vhost_by_name(S->ctx, "default");
    S->bound_port = vh ? lws_get_vhost_listen_port(vh) : S->cfg.port;
    return VOX_OK;
}

void srv_wake_network(srv *S) {
    if (S->ctx) lws_cancel_service(S->ctx);
}

int srv_run(srv *S, volatile sig_atomic_t *stop, vox_error *err) {
    (void)err;
    double deadline = 0;
    for (;;) {
        if (lws_service(S->ctx, 0) < 0) break;
        if (*stop && !S->draining) {
            S->draining = 1;
            deadline = vox_time_now() + S->cfg.grace_sec;
            fprintf(stderr, "vox-server: stopping: %d session(s) in flight, up to %.0f s grace\n",
                    srv_sessions(S), S->cfg.grace_sec);
        }
        if (S->draining) {
            int busy = srv_sessions(S);
            for (srv_conn *c = S->conns; c; c = c->next)
                if (c->out && c->out->head) busy++;
            if (!busy || vox_time_now() > deadline) {
                if (busy) fprintf(stderr, "vox-server: grace period over, %d still open\n", busy);
                break;
            }
        }
    }
    return VOX_OK;
}

void srv_net_stop(srv *S) {
    srv_sched_detach_network(S);             /* the scheduler stops calling lws_cancel_service */
    if (S->ctx) lws_context_destroy(S->ctx); /* closes connections: CLOSED callbacks run */
    S->ctx = NULL;
}

int srv_bound_port(const srv *S) {
    return S->bound_port;
}
