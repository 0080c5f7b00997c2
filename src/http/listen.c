/* SPDX-License-Identifier: MIT */
/*
 * listen.c - the --listen address syntax, for config.c (checking a flag),
 * main.c and http.c (binding). Apart from http.c so that a user of the
 * configuration (config.c, the fuzz harnesses) does not pull in the
 * server. Any thread; no state.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"
#include "util.h"

/*
 * "ADDR:PORT", "[V6ADDR]:PORT", "*:PORT" (all IPv4 addresses) or "PORT"
 * (loopback). Names resolve through getaddrinfo.
 */
int
http_parse_listen(const char *spec, struct sockaddr_storage *ss,
    socklen_t *sslen, char *err, size_t errlen)
{
	char			 host[128], port[16];
	const char		*colon, *h;
	struct addrinfo		 hints, *res = NULL;
	const char		*errstr;
	int			 rv;

	if (strlen(spec) >= sizeof(host))
		goto bad;
	if (spec[0] == '[') {
		const char	*end = strchr(spec, ']');

		if (end == NULL || end[1] != ':')
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(end - spec - 1),
		    spec + 1);
		colon = end + 1;
	} else if ((colon = strrchr(spec, ':')) != NULL) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	} else {
		snprintf(host, sizeof(host), "127.0.0.1");
		colon = spec - 1;
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	strtonum_ll(port, 1, 65535, &errstr);
	if (errstr)
		goto bad;
	h = strcmp(host, "*") == 0 || host[0] == '\0' ? "0.0.0.0" : host;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rv = getaddrinfo(h, port, &hints, &res)) != 0) {
		seterr(err, errlen, "--listen %s: %s", spec, gai_strerror(rv));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	seterr(err, errlen, "--listen %s: expected ADDR:PORT, [ADDR]:PORT or "
	    "PORT", spec);
	return -1;
}
