/*
 * NAME
 *	top_fetch - HTTP GET with a size cap (libcurl)
 * SYNOPSIS
 *	#include "top_fetch.h"
 *
 *	struct top_fetch *top_fetch_new(volatile sig_atomic_t *stop);
 *	int top_fetch_get(struct top_fetch *f, const char *url, long timeout_ms,
 *	    struct top_body *body, char *err, size_t errsize);
 *	void top_body_free(struct top_body *body);
 *	void top_fetch_free(struct top_fetch *f);
 * DESCRIPTION
 *	One libcurl easy handle, reused so that the connection is kept
 *	alive between polls. top_fetch_get() reads url into body (NUL
 *	terminated, len bytes, the HTTP status and Content-Type) and returns
 *	0 for a 200 response. -1 with a sentence in err otherwise: the URL
 *	could not be reached, the status was not 200 (redirects are not
 *	followed), the body was larger than TOP_FETCH_MAX (told by
 *	Content-Length, or counted while reading), it took longer than
 *	timeout_ms, or *stop became non-zero (a signal) during the transfer.
 *	Only http and https; no proxy for loopback addresses.
 *
 *	top_fetch_new() returns NULL when libcurl cannot start. Call
 *	curl_global_init() first (smtptrace_top.c does, once).
 *	Not thread-safe: one handle, one thread.
 */
#ifndef SMTPTRACE_TOP_FETCH_H
#define SMTPTRACE_TOP_FETCH_H

#include <signal.h>
#include <stddef.h>

#define TOP_FETCH_MAX	(64u * 1024 * 1024)

struct top_fetch;

struct top_body {
	char  *data;
	size_t len;
	long   status;
	char   type[96];
};

struct top_fetch *top_fetch_new(volatile sig_atomic_t *stop);
int top_fetch_get(struct top_fetch *f, const char *url, long timeout_ms, struct top_body *body,
		  char *err, size_t errsize);
void top_body_free(struct top_body *body);
void top_fetch_free(struct top_fetch *f);

#endif
