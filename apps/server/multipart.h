/* multipart.h - strict multipart/form-data parser for HTTP uploads (RFC 7578 over RFC 2046).
 *
 * The HTTP layer collects the whole request body (its size limit is enforced while receiving),
 * then calls srv_mp_boundary on the Content-Type header and srv_mp_parse on the body.
 *
 * Grammar accepted (RFC 2046 section 5.1.1; "B" is the boundary):
 *   body       = [preamble CRLF] "--" B padding CRLF part *(CRLF "--" B padding CRLF part)
 *                CRLF "--" B "--" [epilogue]
 *   padding    = *(SP / HTAB)             (transport padding, ignored)
 *   part       = *(header CRLF) CRLF data
 * The first delimiter may start the body (no preamble); the preamble and epilogue are ignored.
 * Data is everything up to the next CRLF "--" B, so "--B" inside data is data unless it starts
 * a line. Line ends in the delimiter and header structure are CRLF only: a bare LF there is an
 * error (every real client, browsers, curl and httpx, sends CRLF). RFC 2046 forbids the
 * delimiter inside a part, so CRLF "--" B followed by anything other than padding CRLF or "--"
 * is an error, not data. A body without the closing "--B--" is an error (a truncated upload).
 *
 * Part headers: "Name: value" lines; obsolete line folding (a line starting with SP/HTAB) is
 * rejected; Content-Disposition must be present, of type form-data, with a name parameter
 * (token or quoted-string, backslash escapes undone; filename likewise; filename* in the
 * RFC 5987 form UTF-8''percent-encoded overrides filename). Content-Transfer-Encoding other
 * than 7bit/8bit/binary is rejected (RFC 7578 deprecates it). Other headers are ignored.
 *
 * Boundary (srv_mp_boundary): from "multipart/form-data; boundary=B" (type and parameter names
 * case-insensitive, B a token or quoted-string), 1..70 characters of RFC 2046 bchars, not
 * ending in a space.
 *
 * Ownership: srv_mp_form owns its parts array and the name/filename/content_type strings; each
 * part's data points INTO the caller's body buffer, which must outlive the form. Errors are one
 * line in vox_error (code VOX_ERR_FORMAT, VOX_ERR_ARG for a bad Content-Type, VOX_ERR_NOMEM),
 * naming the part by its 1-based index and name when known. Stateless and thread-safe. */
#ifndef SRV_MULTIPART_H
#define SRV_MULTIPART_H

#include <stddef.h>

#include "vox_common.h"

#define SRV_MP_BOUNDARY_MAX 70 /* RFC 2046 */

typedef struct srv_mp_part {
    char *name;                /* Content-Disposition name (never NULL, may be "") */
    char *filename;            /* filename parameter, NULL when absent */
    char *content_type;        /* the part's Content-Type value (trimmed), NULL when absent */
    const unsigned char *data; /* borrowed from the body */
    size_t len;
} srv_mp_part;

typedef struct srv_mp_form {
    srv_mp_part *parts;
    size_t n;
} srv_mp_form;

typedef struct srv_mp_limits {
    size_t max_parts;        /* more parts is an error (0 = 64) */
    size_t max_header_bytes; /* bytes of one part's header block incl. CRLFs (0 = 8192) */
} srv_mp_limits;

/* Boundary of a multipart/form-data Content-Type into out[SRV_MP_BOUNDARY_MAX + 1]. Errors: not
 * multipart/form-data, no boundary parameter, bad characters or length. */
int srv_mp_boundary(const char *content_type, char out[SRV_MP_BOUNDARY_MAX + 1], vox_error *err);

/* Parse body[len] with `boundary` into *form (zeroed first; freed again on error). lim may be
 * NULL for the defaults. */
int srv_mp_parse(const void *body, size_t len, const char *boundary, const srv_mp_limits *lim,
                 srv_mp_form *form, vox_error *err);

/* The first part named `name`, or NULL. */
const srv_mp_part *srv_mp_find(const srv_mp_form *form, const char *name);

void srv_mp_free(srv_mp_form *form);

#endif /* SRV_MULTIPART_H */
