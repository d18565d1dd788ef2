/*
 * NAME
 *	httpd - /metrics, /transactions and /recent over HTTP (libmicrohttpd)
 * DESCRIPTION
 *	See httpd.h. Which thread: libmicrohttpd's internal polling thread.
 */
#include "httpd.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "expose.h"
#include "live.h"

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, char *body, size_t len,
	const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
								 MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	size_t len = strlen(text);
	char *body = malloc(len + 1);

	if (body == NULL)
		return MHD_NO;
	memcpy(body, text, len + 1);
	return respond(c, status, body, len, "text/plain; charset=utf-8");
}

static size_t
limit_arg(struct MHD_Connection *c)
{
	const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");

	return limit != NULL ? strtoul(limit, NULL, 10) : 0;
}

static int64_t
wall_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* /transactions[?phase=P][&limit=N] */
static enum MHD_Result
handle_transactions(struct httpd *h, struct MHD_Connection *c)
{
	const char *phase = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "phase");
	struct expose_query q = { .limit = limit_arg(c) };
	size_t len = 0;

	if (phase != NULL) {
		int p = live_phase_from_name(phase);
		if (p < 0)
			return respond_text(c, MHD_HTTP_BAD_REQUEST, "smtptrace: phase is one of "
					    "connect, helo, mail, rcpt, data, content\n");
		q.phase_mask = LIVE_PHASE_BIT(p);
	}
	char *body = expose_sessions(h->reg, &q, registry_clock_ms(), &len);
	if (body == NULL)
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no memory\n");
	return respond(c, MHD_HTTP_OK, body, len, "application/json");
}

/* /recent[?limit=N] */
static enum MHD_Result
handle_recent(struct httpd *h, struct MHD_Connection *c)
{
	size_t len = 0;
	char *body = expose_recent(h->reg, limit_arg(c), registry_clock_ms(),
				   wall_clock_ms(), &len);

	if (body == NULL)
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no memory\n");
	return respond(c, MHD_HTTP_OK, body, len, "application/json");
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size,
       void **con_cls)
{
	struct httpd *h = cls;
	size_t len = 0;
	char *body;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");	/* with Allow */
	if (strcmp(url, "/metrics") == 0) {
		if ((body = expose_metrics(h->reg, &len)) == NULL)
			return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no memory\n");
		return respond(c, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8");
	}
	if (strcmp(url, "/transactions") == 0)
		return handle_transactions(h, c);
	if (strcmp(url, "/recent") == 0)
		return handle_recent(h, c);
	return respond_text(c, MHD_HTTP_NOT_FOUND,
			    "smtptrace: try /metrics, /transactions or /recent\n");
}

#define HTTPD_CONNECTIONS_MAX	256U
#define HTTPD_IDLE_TIMEOUT_S	5U

int
httpd_start(struct httpd *h, const char *listen, struct registry *reg,
	    char *err, size_t errsize)
{
	struct sockaddr_storage ss;

	h->reg = reg;
	h->daemon = NULL;
	if (config_parse_listen(listen, &ss, err, errsize) < 0)
		return -1;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	uint16_t port = ss.ss_family == AF_INET6
		? ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port)
		: ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
	h->daemon = MHD_start_daemon(flags, port, NULL, NULL, handle, h,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				     /* room for a burst of stuck or slow clients
				      * (each idle one is dropped after 5 s) before
				      * a scraper has to wait for a slot */
				     MHD_OPTION_CONNECTION_LIMIT, HTTPD_CONNECTIONS_MAX,
				     MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_IDLE_TIMEOUT_S,
				     MHD_OPTION_END);
	if (h->daemon == NULL) {
		snprintf(err, errsize, "cannot listen on %s (in use, or not an address of this host?)",
			 listen);
		return -1;
	}
	return 0;
}

void
httpd_stop(struct httpd *h)
{
	if (h->daemon != NULL)
		MHD_stop_daemon(h->daemon);
	h->daemon = NULL;
}
