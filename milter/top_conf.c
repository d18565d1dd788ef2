/*
 * NAME
 *	top_conf - which URL smtptrace-top polls
 * DESCRIPTION
 *	See top_conf.h. The only file read is the milter's configuration;
 *	the rest is string work.
 */
#include "top_conf.h"

#include <errno.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int
top_url_from_listen(const char *listen, char *url, size_t size)
{
	const char *colon, *host = listen;
	size_t host_len;
	int n;

	if (listen == NULL || listen[0] == '\0')
		return -1;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		colon = end + 1;
	} else if ((colon = strrchr(listen, ':')) == NULL) {
		return -1;
	}
	host_len = (size_t)(colon - host);
	if (host_len == 0 || !all_digits(colon + 1) || strspn(host, "0123456789abcdefABCDEF.:[]") < host_len)
		return -1;
	if (host_len == 7 && memcmp(host, "0.0.0.0", 7) == 0)
		n = snprintf(url, size, "http://127.0.0.1:%s", colon + 1);
	else if (host_len == 4 && memcmp(host, "[::]", 4) == 0)
		n = snprintf(url, size, "http://[::1]:%s", colon + 1);
	else
		n = snprintf(url, size, "http://%.*s:%s", (int)host_len, host, colon + 1);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Drops a trailing query, "/", and smtptrace's own path (in place, after "://"). */
static void
trim_path(char *url)
{
	static const char *const paths[] = { "/metrics", "/transactions", "/recent" };
	char *q = strchr(url, '?');
	size_t len;

	if (q != NULL)
		*q = '\0';
	len = strlen(url);
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		size_t pl = strlen(paths[i]);
		if (len > pl && strcmp(url + len - pl, paths[i]) == 0) {
			url[len -= pl] = '\0';
			break;
		}
	}
	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
}

int
top_url_base(const char *in, char *url, size_t size, char *err, size_t errsize)
{
	const char *scheme_end = strstr(in, "://");
	int n;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++)
		if (*p <= ' ' || *p == 0x7F) {
			snprintf(err, errsize, "a URL has no spaces or control characters");
			return -1;
		}
	if (scheme_end == NULL)
		n = snprintf(url, size, "http://%s", in);
	else if (strncmp(in, "http://", 7) == 0 || strncmp(in, "https://", 8) == 0)
		n = snprintf(url, size, "%s", in);
	else {
		snprintf(err, errsize, "only http:// and https:// URLs");
		return -1;
	}
	if (n < 0 || (size_t)n >= size) {
		snprintf(err, errsize, "the URL is longer than %zu bytes", size - 1);
		return -1;
	}
	char *host = strstr(url, "://") + 3;
	trim_path(host);
	if (*host == '\0' || *host == '/' || *host == ':') {
		snprintf(err, errsize, "no host in the URL");
		return -1;
	}
	return 0;
}

void
top_default_url(const char *conf_path, char *url, size_t size, char *note, size_t notesize)
{
	config_t cfg;
	const char *listen = NULL;

	note[0] = '\0';
	snprintf(url, size, "%s", TOP_DEFAULT_URL);
	if (access(conf_path, F_OK) < 0 && errno == ENOENT)
		return;
	config_init(&cfg);
	if (config_read_file(&cfg, conf_path) == CONFIG_FALSE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			snprintf(note, notesize, "%s: cannot read it; polling %s", conf_path, url);
		else
			snprintf(note, notesize, "%s:%d: %s; polling %s", conf_path,
				 config_error_line(&cfg), config_error_text(&cfg), url);
	} else if (config_lookup_string(&cfg, "metrics.http_listen", &listen) == CONFIG_TRUE &&
		   listen[0] != '\0' && top_url_from_listen(listen, url, size) < 0) {
		snprintf(url, size, "%s", TOP_DEFAULT_URL);
		snprintf(note, notesize, "%s: metrics.http_listen \"%.64s\" does not read as "
			 "address:port; polling %s", conf_path, listen, url);
	}
	config_destroy(&cfg);
}
