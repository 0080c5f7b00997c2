/* SPDX-License-Identifier: MIT */
/*
 * http.h - the http layer: the server (http.c and its pieces, which
 * share http_int.h) and the --listen address syntax (listen.c). A
 * request reaches the dialects (api/) as a parsed struct httpreq through
 * the routes table main passes to httpd_start(), and they answer through
 * http_reply*(). Statuses here are HTTP's.
 * Above lib, store, registry, bpftrace, scripts and pcp; below api.
 */
#ifndef BT_HTTP_H
#define BT_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "util.h"

struct daemon_state;
struct MHD_Connection;
struct hconn;

/* ====================================================================
 * http.c and its pieces: the server
 * ==================================================================== */

/* one parsed HTTP request, as the API layers see it */
struct httpreq {
	struct daemon_state	*hr_ds;
	struct MHD_Connection	*hr_conn;
	const char		*hr_method;
	int			 hr_http10;	/* request was HTTP/1.0 */
	int			 hr_authed;	/* hr_user holds a checked user */
	char			 hr_user[65];
	unsigned		 hr_roles;
	const char		*hr_path;	/* decoded, without query */
	struct params		 hr_params;	/* query + form body */
	const char		*hr_body;	/* raw body (POST), or NULL */
	size_t			 hr_bodylen;
	struct hconn		*hr_hc;		/* its connection, or NULL */
	size_t			*hr_held;	/* answer bytes charged to
						   ds->mem until the request
						   ends, or NULL */
};

#define HTTP_GET	0x01
#define HTTP_POST	0x02

/*
 * The routes table main passes to httpd_start, matched in order (by
 * prefix, the whole path when rt_exact, or rt_match instead of both); a
 * NULL rt_handler ends it.
 */
struct http_route {
	const char	*rt_prefix;
	int		(*rt_handler)(struct httpreq *hr);
	int		 rt_exact;	/* the whole path, not a prefix */
	int		(*rt_match)(const char *path);	/* instead of both */
};

struct http_options {
	const struct http_route	*ho_routes;
	/*
	 * A request failed authentication (bad user or password): path
	 * decoded, body the raw request body (NULL: none), tried the user
	 * name given, why the reason. On a libmicrohttpd thread; NULL: none.
	 */
	void	(*ho_login_failed)(struct httpreq *hr, const char *path,
		    const char *body, size_t bodylen, const char *tried,
		    const char *why);
};

/* http.c: start and stop */
struct httpd;
struct httpd	*httpd_start(struct daemon_state *ds,
		    const struct http_options *opts, char *err, size_t errlen);
void		 httpd_stop(struct httpd *h);

/* http_request.c: one request */
int		 http_form_body(struct httpreq *hr);

/* http_reply.c: the answers, and who the client is */
int		 http_reply(struct httpreq *hr, unsigned status,
		    const char *ctype, char *body, size_t len);
int		 http_reply_buf(struct httpreq *hr, unsigned status,
		    const char *ctype, struct buf *b);
int		 http_reply_memcap(struct httpreq *hr);
int		 http_reply_html(struct httpreq *hr, unsigned status,
		    const char *servlet, const char *msg);
int		 http_reply_options(struct httpreq *hr, int allowed);
const char	*http_header(struct httpreq *hr, const char *name);
int		 http_peer(struct httpreq *hr, char *out, size_t len);
int		 http_reply_error(struct httpreq *hr, unsigned status,
		    const char *msg);

/* an extra response header for http_reply_static() */
struct http_hdr {
	const char	*hh_name;
	const char	*hh_value;
};
int		 http_reply_static(struct httpreq *hr, unsigned status,
		    const void *body, size_t len, const struct http_hdr *hdrs,
		    size_t nhdrs);

/* ====================================================================
 * listen.c: the --listen address syntax
 * ==================================================================== */

/* a --listen spec: "ADDR:PORT", "[V6ADDR]:PORT", "*:PORT" or "PORT" */
int		 http_parse_listen(const char *spec,
		    struct sockaddr_storage *ss, socklen_t *sslen, char *err,
		    size_t errlen);

#endif /* BT_HTTP_H */
