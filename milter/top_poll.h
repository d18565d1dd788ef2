/*
 * NAME
 *	top_poll - one round of requests to the milter, and what it gave
 * SYNOPSIS
 *	#include "top_poll.h"
 *
 *	int top_poll_init(struct top_poll *p, const char *base_url,
 *	    double interval_s, volatile sig_atomic_t *stop);
 *	int top_poll_metrics(struct top_poll *p);
 *	int top_poll_all(struct top_poll *p);
 *	void top_poll_scene(const struct top_poll *p, struct top_scene *sc);
 *	void top_poll_free(struct top_poll *p);
 * DESCRIPTION
 *	top_poll_metrics() takes a /metrics sample; with the one before it
 *	the rates over the time between them (the monotonic clock's) are
 *	computed. top_poll_all() takes a sample, then /transactions and
 *	/recent. Both return 0, or -1 with p->error set (the documents from
 *	the last good poll stay, for the screen to keep showing). A 404 for
 *	/recent is not an error: a milter that predates it; p->recent_missing
 *	says so. p->error is "" after a good poll.
 *
 *	Each request may take the interval, at least 2 s and at most 10 s.
 *	top_poll_scene() fills a scene that points into p.
 */
#ifndef SMTPTRACE_TOP_POLL_H
#define SMTPTRACE_TOP_POLL_H

#include <signal.h>
#include <stdbool.h>

#include "top_conf.h"
#include "top_fetch.h"
#include "top_model.h"
#include "top_prom.h"
#include "top_rates.h"
#include "top_text.h"

struct top_poll {
	struct top_fetch *fetch;
	char   base[TOP_URL_MAX];
	double interval_s;
	struct top_transactions txns;
	struct top_recent recent;
	struct top_metrics before, after;
	struct top_rates rates;
	bool   have_txns, have_recent, have_before, have_after, recent_missing;
	double before_at, after_at;	/* monotonic seconds */
	char   error[768];
};

int top_poll_init(struct top_poll *p, const char *base_url, double interval_s,
		  volatile sig_atomic_t *stop);
int top_poll_metrics(struct top_poll *p);
int top_poll_all(struct top_poll *p);
void top_poll_scene(const struct top_poll *p, struct top_scene *sc);
void top_poll_free(struct top_poll *p);

#endif
