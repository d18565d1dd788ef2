/*
 * NAME
 *	httpd - /metrics, /transactions and /recent over HTTP (libmicrohttpd)
 * SYNOPSIS
 *	httpd_start(&h, "127.0.0.1:9754", &registry, err, sizeof err);
 *	httpd_stop(&h);
 * DESCRIPTION
 *	libmicrohttpd's own polling thread serves GET (and HEAD) of
 *	/metrics (Prometheus text format 0.0.4), /transactions[?phase=P]
 *	[&limit=N] and /recent[?limit=N] (JSON, expose.h; an unknown phase
 *	gets 400); other paths get 404, other methods 405. At most 256
 *	connections, each closed after 5 s idle (a few stuck clients cannot
 *	keep a scraper out). It never touches libmilter. Start it after the signals that
 *	libmilter's signal thread waits for are blocked.
 */
#ifndef SMTPTRACE_HTTPD_H
#define SMTPTRACE_HTTPD_H

#include <stddef.h>

#include "registry.h"

struct httpd {
	void            *daemon;	/* struct MHD_Daemon */
	struct registry *reg;
};

int  httpd_start(struct httpd *h, const char *listen, struct registry *reg,
		 char *err, size_t errsize);
void httpd_stop(struct httpd *h);

#endif
