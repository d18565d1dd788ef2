/*
 * NAME
 *	top_poll - one round of requests to the milter, and what it gave
 * DESCRIPTION
 *	See top_poll.h. Which thread: the main one (the only one).
 */
#include "top_poll.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sbuf.h"

#define TXN_LIMIT	2000
#define RECENT_LIMIT	200

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
top_poll_init(struct top_poll *p, const char *base_url, double interval_s,
	      volatile sig_atomic_t *stop)
{
	memset(p, 0, sizeof *p);
	snprintf(p->base, sizeof p->base, "%s", base_url);
	p->interval_s = interval_s;
	p->fetch = top_fetch_new(stop);
	return p->fetch != NULL ? 0 : -1;
}

static long
timeout_ms(const struct top_poll *p)
{
	double ms = p->interval_s * 1000;

	return ms < 2000 ? 2000 : ms > 10000 ? 10000 : (long)ms;
}

/* GETs base+path; on error, p->error says what and *status has the HTTP status. */
static int
get(struct top_poll *p, const char *path, struct top_body *body)
{
	char url[TOP_URL_MAX + 64];

	if (snprintf(url, sizeof url, "%s%s", p->base, path) >= (int)sizeof url) {
		snprintf(p->error, sizeof p->error, "the URL is too long");
		return -1;
	}
	return top_fetch_get(p->fetch, url, timeout_ms(p), body, p->error, sizeof p->error);
}

/* Prefixes p->error (a parser's message) with the URL it is about. */
static void
blame(struct top_poll *p, const char *path, const char *why)
{
	struct sbuf sb;

	sbuf_init(&sb, p->error, sizeof p->error);	/* cut if it must be */
	sbuf_printf(&sb, "%s%s does not speak smtptrace: %s", p->base, path, why);
}

int
top_poll_metrics(struct top_poll *p)
{
	struct top_body body;
	struct top_metrics m;
	char why[256];

	if (get(p, "/metrics", &body) < 0)
		return -1;
	int rc = top_metrics_parse(body.data, body.len, &m, why, sizeof why);
	top_body_free(&body);
	if (rc < 0) {
		blame(p, "/metrics", why);
		return -1;
	}
	p->before = p->after;
	p->before_at = p->after_at;
	p->have_before = p->have_after;
	p->after = m;
	p->after_at = now_s();
	p->have_after = true;
	if (p->have_before)
		top_rates_compute(&p->before, &p->after, p->after_at - p->before_at, &p->rates);
	return 0;
}

static int
poll_transactions(struct top_poll *p)
{
	struct top_body body;
	struct top_transactions t;
	char path[64], why[256];

	snprintf(path, sizeof path, "/transactions?limit=%d", TXN_LIMIT);
	if (get(p, path, &body) < 0)
		return -1;
	int rc = top_transactions_parse(body.data, body.len, &t, why, sizeof why);
	top_body_free(&body);
	if (rc < 0) {
		blame(p, "/transactions", why);
		return -1;
	}
	top_transactions_free(&p->txns);
	p->txns = t;
	p->have_txns = true;
	return 0;
}

static int
poll_recent(struct top_poll *p)
{
	struct top_body body;
	struct top_recent r;
	char path[64], why[256];

	snprintf(path, sizeof path, "/recent?limit=%d", RECENT_LIMIT);
	if (get(p, path, &body) < 0) {
		if (body.status != 404)
			return -1;
		p->recent_missing = true;
		p->error[0] = '\0';
		top_recent_free(&p->recent);
		p->have_recent = false;
		return 0;
	}
	int rc = top_recent_parse(body.data, body.len, &r, why, sizeof why);
	top_body_free(&body);
	if (rc < 0) {
		blame(p, "/recent", why);
		return -1;
	}
	top_recent_free(&p->recent);
	p->recent = r;
	p->have_recent = true;
	p->recent_missing = false;
	return 0;
}

int
top_poll_all(struct top_poll *p)
{
	if (top_poll_metrics(p) < 0 || poll_transactions(p) < 0 || poll_recent(p) < 0)
		return -1;
	p->error[0] = '\0';
	return 0;
}

void
top_poll_scene(const struct top_poll *p, struct top_scene *sc)
{
	memset(sc, 0, sizeof *sc);
	sc->url = p->base;
	sc->txns = p->have_txns ? &p->txns : NULL;
	sc->recent = p->have_recent ? &p->recent : NULL;
	sc->metrics = p->have_after ? &p->after : NULL;
	sc->rates = p->have_before ? &p->rates : NULL;
	sc->interval_s = p->interval_s;
}

void
top_poll_free(struct top_poll *p)
{
	top_transactions_free(&p->txns);
	top_recent_free(&p->recent);
	top_fetch_free(p->fetch);
	p->fetch = NULL;
}
