/*
 * NAME
 *	top_conf - which URL smtptrace-top polls
 * SYNOPSIS
 *	#include "top_conf.h"
 *
 *	int top_url_from_listen(const char *listen, char *url, size_t size);
 *	int top_url_base(const char *in, char *url, size_t size,
 *	    char *err, size_t errsize);
 *	void top_default_url(const char *conf_path, char *url, size_t size,
 *	    char *note, size_t notesize);
 * DESCRIPTION
 *	top_url_from_listen() turns a metrics.http_listen value
 *	("127.0.0.1:9754", "[::1]:9754") into the URL to poll; a wildcard
 *	address (0.0.0.0, [::]) is polled on loopback. -1 for an empty or
 *	malformed value.
 *
 *	top_url_base() checks a URL given with -u and writes the base the
 *	paths are appended to: "http://" is added when no scheme is given;
 *	only http and https are taken; a trailing "/", query, or one of
 *	smtptrace's own paths (/metrics, /transactions, /recent) is dropped.
 *	-1 with err for anything else or a URL with spaces or control
 *	characters.
 *
 *	top_default_url() reads conf_path with libconfig: its
 *	metrics.http_listen when set, else TOP_DEFAULT_URL. A missing file is
 *	silently fine; a file that cannot be read or parsed, or a value that
 *	does not read, falls back too and says so in note (else note is "").
 */
#ifndef SMTPTRACE_TOP_CONF_H
#define SMTPTRACE_TOP_CONF_H

#include <stddef.h>

#define TOP_DEFAULT_URL		"http://127.0.0.1:9754"
#define TOP_CONF_PATH		"/etc/smtptrace/smtptrace.conf"
#define TOP_URL_MAX		512

int top_url_from_listen(const char *listen, char *url, size_t size);
int top_url_base(const char *in, char *url, size_t size, char *err, size_t errsize);
void top_default_url(const char *conf_path, char *url, size_t size, char *note,
		     size_t notesize);

#endif
