/*
 * NAME
 *	top_fetch - HTTP GET with a size cap (libcurl)
 * DESCRIPTION
 *	See top_fetch.h. The body grows by doubling up to TOP_FETCH_MAX; the
 *	write callback refuses more, which ends the transfer with
 *	CURLE_WRITE_ERROR, told apart from a real write error by a flag.
 */
#include "top_fetch.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top_str.h"
#include "sbuf.h"

struct top_fetch {
	CURL  *curl;
	volatile sig_atomic_t *stop;
	char   errbuf[CURL_ERROR_SIZE];
	struct top_body *body;		/* the one being read */
	size_t cap;
	bool   too_big, no_memory;
};

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct top_fetch *f = arg;
	struct top_body *b = f->body;
	size_t n = size * nmemb;

	if (n > TOP_FETCH_MAX - b->len) {
		f->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > f->cap) {
		size_t cap = f->cap ? f->cap : 64 * 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *grown = realloc(b->data, cap);
		if (grown == NULL) {
			f->no_memory = true;
			return 0;
		}
		b->data = grown;
		f->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
	    curl_off_t ulnow)
{
	struct top_fetch *f = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return f->stop != NULL && *f->stop ? 1 : 0;
}

struct top_fetch *
top_fetch_new(volatile sig_atomic_t *stop)
{
	struct top_fetch *f = calloc(1, sizeof *f);

	if (f == NULL || (f->curl = curl_easy_init()) == NULL) {
		free(f);
		return NULL;
	}
	CURL *c = f->curl;
	f->stop = stop;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)TOP_FETCH_MAX);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");	/* whatever libcurl decodes */
	curl_easy_setopt(c, CURLOPT_USERAGENT, "smtptrace-top");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	return f;
}

/* A short, safe piece of the body for an error message. */
static void
body_hint(struct sbuf *sb, const struct top_body *b)
{
	char first[128];
	size_t n = 0;

	for (; n < b->len && n + 1 < sizeof first && b->data[n] != '\n'; n++)
		first[n] = b->data[n];
	first[n] = '\0';
	if (n > 0) {
		sbuf_puts(sb, ": \"");
		top_fit(sb, first, 60, TOP_ASCII);
		sbuf_putc(sb, '"');
	}
}

static void
describe(struct top_fetch *f, CURLcode rc, const char *url, char *err, size_t errsize)
{
	struct sbuf sb;

	sbuf_init(&sb, err, errsize);
	if (f->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		sbuf_printf(&sb, "%s: the response is larger than %u MiB: not smtptrace", url,
			    TOP_FETCH_MAX / (1024 * 1024));
	else if (f->no_memory)
		sbuf_printf(&sb, "%s: out of memory reading the response", url);
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		sbuf_printf(&sb, "%s: interrupted", url);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		sbuf_printf(&sb, "cannot reach %s: no answer in time", url);
	else {
		sbuf_printf(&sb, "cannot reach %s: ", url);
		top_fit(&sb, f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc), 160, TOP_ASCII);
	}
}

int
top_fetch_get(struct top_fetch *f, const char *url, long timeout_ms, struct top_body *body,
	      char *err, size_t errsize)
{
	char *type = NULL;

	memset(body, 0, sizeof *body);
	f->body = body;
	f->cap = 0;
	f->too_big = f->no_memory = false;
	f->errbuf[0] = '\0';
	curl_easy_setopt(f->curl, CURLOPT_URL, url);
	curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000);
	CURLcode rc = curl_easy_perform(f->curl);
	f->body = NULL;
	if (rc != CURLE_OK) {
		describe(f, rc, url, err, errsize);
		top_body_free(body);
		return -1;
	}
	curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &body->status);
	if (curl_easy_getinfo(f->curl, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != NULL)
		snprintf(body->type, sizeof body->type, "%s", type);
	if (body->status != 200) {
		struct sbuf sb;
		sbuf_init(&sb, err, errsize);
		sbuf_printf(&sb, "%s: HTTP %ld%s", url, body->status,
			    body->status >= 300 && body->status < 400 ? " (a redirect: not followed)" : "");
		body_hint(&sb, body);
		sbuf_puts(&sb, ": not smtptrace's answer");
		top_body_free(body);
		return -1;
	}
	if (body->data == NULL && (body->data = calloc(1, 1)) == NULL) {
		snprintf(err, errsize, "%s: out of memory", url);
		return -1;
	}
	return 0;
}

void
top_body_free(struct top_body *body)
{
	free(body->data);
	body->data = NULL;
	body->len = 0;
}

void
top_fetch_free(struct top_fetch *f)
{
	if (f == NULL)
		return;
	curl_easy_cleanup(f->curl);
	free(f);
}
