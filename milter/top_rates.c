/*
 * NAME
 *	top_rates - per-second rates and upload quantiles from two /metrics samples
 * DESCRIPTION
 *	See top_rates.h. The quantile follows Prometheus'
 *	promql/quantile.go (bucketQuantile) for the cases a well-formed
 *	histogram can reach; counts that go down between buckets are
 *	raised to keep them monotonic, as it does.
 */
#include "top_rates.h"

#include <math.h>
#include <string.h>

/* A counter's growth; a lower value means it restarted from zero. */
static double
growth(double before, double after)
{
	if (isnan(before) || isnan(after))
		return 0;
	return after >= before ? after - before : after;
}

double
top_histogram_quantile(double q, const struct top_bucket *b, size_t n)
{
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	if (isnan(q) || n < 2 || !isinf(b[n - 1].le))
		return NAN;
	double total = b[n - 1].count, prev_max = 0;
	for (size_t i = 0; i < n; i++)		/* monotonic, as Prometheus fixes it */
		prev_max = fmax(prev_max, b[i].count);
	total = fmax(total, prev_max);
	if (!(total > 0))
		return NAN;
	double rank = q * total, below = 0, cum = 0;
	size_t i;
	for (i = 0; i < n - 1; i++) {
		cum = fmax(cum, b[i].count);
		if (cum >= rank)
			break;
		below = cum;
	}
	if (i == n - 1)
		return b[n - 2].le;
	double lower = i == 0 ? 0 : b[i - 1].le, upper = b[i].le;
	if (i == 0 && upper <= 0)
		return upper;
	double in_bucket = cum - below;	/* 0 only for q = 0 on an empty first bucket: NaN */
	return lower + (upper - lower) * ((rank - below) / in_bucket);
}

static double
outcome_before(const struct top_metrics *before, const char *name)
{
	for (size_t i = 0; i < before->noutcomes; i++)
		if (strcmp(before->outcomes[i].name, name) == 0)
			return before->outcomes[i].total;
	return 0;
}

/* The buckets' growth, when both samples have the same bounds. */
static size_t
bucket_growth(const struct top_metrics *before, const struct top_metrics *after,
	      struct top_bucket *out)
{
	bool same = before->nbuckets == after->nbuckets;

	for (size_t i = 0; same && i < after->nbuckets; i++)
		same = before->upload[i].le == after->upload[i].le;
	for (size_t i = 0; i < after->nbuckets; i++) {
		out[i].le = after->upload[i].le;
		out[i].count = same ? growth(before->upload[i].count, after->upload[i].count)
				    : after->upload[i].count;
	}
	return after->nbuckets;
}

void
top_rates_compute(const struct top_metrics *before, const struct top_metrics *after,
		  double elapsed_s, struct top_rates *r)
{
	struct top_bucket delta[TOP_BUCKETS_MAX];

	memset(r, 0, sizeof *r);
	r->p50 = r->p95 = NAN;
	if (!(elapsed_s > 0))
		return;
	r->valid = true;
	r->elapsed_s = elapsed_s;
	for (size_t i = 0; i < after->noutcomes && i < TOP_OUTCOMES_MAX; i++) {
		const struct top_outcome_total *o = &after->outcomes[i];
		struct top_rate *rate = &r->rates[r->n++];
		memcpy(rate->name, o->name, sizeof rate->name);
		rate->per_s = growth(outcome_before(before, o->name), o->total) / elapsed_s;
		r->total_per_s += rate->per_s;
	}
	size_t n = bucket_growth(before, after, delta);
	if (n >= 2 && isinf(delta[n - 1].le)) {
		r->uploads = delta[n - 1].count;
		r->p50 = top_histogram_quantile(0.5, delta, n);
		r->p95 = top_histogram_quantile(0.95, delta, n);
	}
}
