/*
 * NAME
 *	top_rates - per-second rates and upload quantiles from two /metrics samples
 * SYNOPSIS
 *	#include "top_rates.h"
 *
 *	void top_rates_compute(const struct top_metrics *before,
 *	    const struct top_metrics *after, double elapsed_s,
 *	    struct top_rates *r);
 *	double top_histogram_quantile(double q, const struct top_bucket *b,
 *	    size_t n);
 * DESCRIPTION
 *	top_rates_compute() gives, for each outcome in after, the
 *	transactions per second over the interval (the counter's growth over
 *	elapsed_s; a counter that went down means the milter restarted, and
 *	its new value is the growth, as Prometheus' rate() takes it), the
 *	uploads seen in the interval, and their p50 and p95 from the
 *	smtptrace_upload_seconds buckets' growth. r->valid is false when
 *	elapsed_s is not positive. Quantiles are NAN without uploads.
 *
 *	top_histogram_quantile() is Prometheus' histogram_quantile() on
 *	cumulative buckets sorted by le, the last one +Inf: linear
 *	interpolation inside the bucket that holds the rank (from 0 for the
 *	first bucket); the rank in the +Inf bucket gives the highest finite
 *	bound. -Inf for q < 0, +Inf for q > 1; NAN for no +Inf bucket or no
 *	observations.
 *
 *	Pure.
 */
#ifndef SMTPTRACE_TOP_RATES_H
#define SMTPTRACE_TOP_RATES_H

#include <stdbool.h>

#include "top_prom.h"

struct top_rate {
	char   name[TOP_LABEL_MAX];
	double per_s;
};

struct top_rates {
	bool   valid;
	double elapsed_s;
	size_t n;
	struct top_rate rates[TOP_OUTCOMES_MAX];
	double total_per_s;
	double uploads;			/* in the interval */
	double p50, p95;		/* seconds */
};

void top_rates_compute(const struct top_metrics *before, const struct top_metrics *after,
		       double elapsed_s, struct top_rates *r);
double top_histogram_quantile(double q, const struct top_bucket *b, size_t n);

#endif
