/*
 * NAME
 *	metrics - counters, gauges and histograms in Prometheus' terms
 * DESCRIPTION
 *	See metrics.h. Histogram sums are kept in integer micro-units
 *	(microseconds, bytes) so that they stay atomic.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "version.h"

#define BUCKETS_MAX 20

struct histogram {
	const double *bounds;		/* upper bounds, ascending; +Inf implied */
	size_t        nbounds;
	double        unit;		/* one stored unit, in the metric's unit */
	atomic_ulong  counts[BUCKETS_MAX];	/* per bucket, not cumulative */
	atomic_ulong  count;
	atomic_ullong sum;		/* in units */
};

static const double seconds_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
};
static const double bytes_bounds[] = {
	1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
};
_Static_assert(sizeof seconds_bounds / sizeof seconds_bounds[0] < BUCKETS_MAX, "buckets");
_Static_assert(sizeof bytes_bounds / sizeof bytes_bounds[0] < BUCKETS_MAX, "buckets");

#define SECONDS_HIST { .bounds = seconds_bounds, \
	.nbounds = sizeof seconds_bounds / sizeof seconds_bounds[0], .unit = 1e-6 }

enum phase_metric { PM_HELO, PM_MAIL, PM_RCPT, PM_DATA, PM_UPLOAD, PM_CONTENT, PM__COUNT };
static const char *const phase_metric_names[PM__COUNT] = {
	"helo", "mail", "rcpt", "data", "upload", "content",
};

#define REJ_SUBJECTS 8
#define REJ_DETAILS 40

static atomic_ulong connections_open, connections_total;
static atomic_ulong outcomes[OUTCOME__COUNT];
static atomic_ulong rejected[2][REJ_SUBJECTS][REJ_DETAILS];	/* class 4, 5 */
static atomic_ulong rejected_other;
static struct histogram phase_hist[PM__COUNT] = {
	SECONDS_HIST, SECONDS_HIST, SECONDS_HIST, SECONDS_HIST, SECONDS_HIST, SECONDS_HIST,
};
static struct histogram upload_seconds = SECONDS_HIST;
static struct histogram upload_bytes = {
	.bounds = bytes_bounds, .nbounds = sizeof bytes_bounds / sizeof bytes_bounds[0], .unit = 1,
};

static void
observe(struct histogram *h, double value)
{
	size_t i = 0;

	if (value < 0)
		value = 0;
	while (i < h->nbounds && value > h->bounds[i])
		i++;
	atomic_fetch_add(&h->counts[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum, (unsigned long long)(value / h->unit + 0.5));
}

void
metrics_connection_open(void)
{
	atomic_fetch_add(&connections_open, 1);
	atomic_fetch_add(&connections_total, 1);
}

unsigned long
metrics_connections_open(void)
{
	return atomic_load(&connections_open);
}

void
metrics_connection_close(void)
{
	atomic_fetch_sub(&connections_open, 1);
}

void
metrics_rejected(const char *enhanced)
{
	int c, s, d, n = 0;

	if (enhanced != NULL && sscanf(enhanced, "%1d.%3d.%3d%n", &c, &s, &d, &n) == 3 &&
	    enhanced[n] == '\0' && (c == 4 || c == 5) && s >= 0 && s < REJ_SUBJECTS &&
	    d >= 0 && d < REJ_DETAILS)
		atomic_fetch_add(&rejected[c == 5][s][d], 1);
	else
		atomic_fetch_add(&rejected_other, 1);
}

/* Seconds between two phases, when both were seen. */
static void
observe_span(enum phase_metric pm, int64_t from, int64_t to)
{
	if (from >= 0 && to >= from)
		observe(&phase_hist[pm], (double)(to - from) / 1000.0);
}

void
metrics_transaction(const struct session *s, enum outcome o)
{
	const struct txn *t = &s->txn;
	int64_t content = txn_first_content(t);
	/* "mail" runs from what came last before MAIL: connect, HELO, or
	 * the end of the previous transaction on this connection */
	int64_t before_mail = s->connect_at;

	if (t->at[PHASE_HELO] > before_mail)
		before_mail = t->at[PHASE_HELO];
	if (t->seq > 1 && s->last_txn_end > before_mail)
		before_mail = s->last_txn_end;
	if ((unsigned)o < OUTCOME__COUNT)
		atomic_fetch_add(&outcomes[o], 1);
	if (t->seq == 1)
		observe_span(PM_HELO, s->connect_at, t->at[PHASE_HELO]);
	observe_span(PM_MAIL, before_mail, t->at[PHASE_MAIL]);
	observe_span(PM_RCPT, t->at[PHASE_MAIL], t->at[PHASE_RCPT]);
	observe_span(PM_DATA, t->at[PHASE_RCPT], t->at[PHASE_DATA]);
	observe_span(PM_UPLOAD, t->at[PHASE_DATA], content);
	observe_span(PM_CONTENT, content, t->at[PHASE_EOM]);
	if (t->at[PHASE_DATA] >= 0 && content >= 0) {
		observe(&upload_seconds, (double)(content - t->at[PHASE_DATA]) / 1000.0);
		observe(&upload_bytes, (double)(t->header_bytes + t->body_bytes));
	}
}

/* ---- exposition ---------------------------------------------------------- */

static void
head(struct sbuf *sb, const char *name, const char *type, const char *help)
{
	sbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
put_histogram(struct sbuf *sb, const char *name, const char *label,
	      struct histogram *h)
{
	unsigned long cumulative = 0;
	const char *sep = label[0] ? "," : "";

	for (size_t i = 0; i <= h->nbounds; i++) {
		cumulative += atomic_load(&h->counts[i]);
		/* whole bounds in full (1048576, not %g's 1.04858e+06) */
		if (i < h->nbounds && h->bounds[i] == (double)(long long)h->bounds[i])
			sbuf_printf(sb, "%s_bucket{%s%sle=\"%lld\"} %lu\n", name, label, sep,
				    (long long)h->bounds[i], cumulative);
		else if (i < h->nbounds)
			sbuf_printf(sb, "%s_bucket{%s%sle=\"%g\"} %lu\n", name, label, sep,
				    h->bounds[i], cumulative);
		else
			sbuf_printf(sb, "%s_bucket{%s%sle=\"+Inf\"} %lu\n", name, label,
				    sep, cumulative);
	}
	const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
	sbuf_printf(sb, "%s_sum%s%s%s %.6f\n", name, open, label, close,
		    (double)atomic_load(&h->sum) * h->unit);
	/* the buckets' total, not a separate load: +Inf and _count agree
	 * even while observations land between the loads */
	sbuf_printf(sb, "%s_count%s%s%s %lu\n", name, open, label, close, cumulative);
}

static void
put_rejected(struct sbuf *sb)
{
	head(sb, "smtptrace_rejected_recipients_total", "counter",
	     "Recipients the MTA rejected, by the enhanced status code it gave.");
	for (int c = 0; c < 2; c++)
		for (int s = 0; s < REJ_SUBJECTS; s++)
			for (int d = 0; d < REJ_DETAILS; d++) {
				unsigned long v = atomic_load(&rejected[c][s][d]);
				if (v > 0)
					sbuf_printf(sb, "smtptrace_rejected_recipients_total{enhanced=\"%d.%d.%d\"} %lu\n",
						    c ? 5 : 4, s, d, v);
			}
	sbuf_printf(sb, "smtptrace_rejected_recipients_total{enhanced=\"other\"} %lu\n",
		    atomic_load(&rejected_other));
}

void
metrics_render(struct sbuf *sb, struct registry *reg)
{
	size_t in_data = 0, stalled = 0;
	unsigned long stalls = 0;
	char label[64];

	if (reg != NULL)
		registry_counts(reg, &in_data, &stalled, &stalls);
	head(sb, "smtptrace_build_info", "gauge", "Version of the running smtptrace-milter.");
	sbuf_printf(sb, "smtptrace_build_info{version=\"%s\"} 1\n", SMTPTRACE_VERSION);
	head(sb, "smtptrace_connections_open", "gauge", "SMTP connections open now.");
	sbuf_printf(sb, "smtptrace_connections_open %lu\n", atomic_load(&connections_open));
	head(sb, "smtptrace_connections_total", "counter", "SMTP connections seen.");
	sbuf_printf(sb, "smtptrace_connections_total %lu\n", atomic_load(&connections_total));
	head(sb, "smtptrace_transactions_total", "counter", "Transactions, by how they ended.");
	for (int o = 0; o < OUTCOME__COUNT; o++)
		if (outcome_scope((enum outcome)o) == OUTCOME_MILTER)
			sbuf_printf(sb, "smtptrace_transactions_total{outcome=\"%s\"} %lu\n",
				    outcome_name((enum outcome)o), atomic_load(&outcomes[o]));
	head(sb, "smtptrace_transactions_in_data", "gauge",
	     "Transactions after 354 whose message has not arrived yet.");
	sbuf_printf(sb, "smtptrace_transactions_in_data %zu\n", in_data);
	head(sb, "smtptrace_transactions_stalled", "gauge",
	     "Of those, the ones past stall.warn_after.");
	sbuf_printf(sb, "smtptrace_transactions_stalled %zu\n", stalled);
	head(sb, "smtptrace_stalls_total", "counter",
	     "Transactions that stalled after 354 (passed stall.warn_after).");
	sbuf_printf(sb, "smtptrace_stalls_total %lu\n", stalls);
	put_rejected(sb);
	head(sb, "smtptrace_phase_duration_seconds", "histogram",
	     "Time from one SMTP phase to the next, per transaction.");
	for (int p = 0; p < PM__COUNT; p++) {
		snprintf(label, sizeof label, "phase=\"%s\"", phase_metric_names[p]);
		put_histogram(sb, "smtptrace_phase_duration_seconds", label, &phase_hist[p]);
	}
	head(sb, "smtptrace_upload_seconds", "histogram",
	     "Upload time after 354: DATA to the first content event.");
	put_histogram(sb, "smtptrace_upload_seconds", "", &upload_seconds);
	head(sb, "smtptrace_upload_bytes", "histogram", "Size of the uploaded message (headers and body).");
	put_histogram(sb, "smtptrace_upload_bytes", "", &upload_bytes);
	head(sb, "smtptrace_degraded_total", "counter",
	     "Internal failures that made the milter observe less, by kind.");
	for (int k = 0; k < DEGRADED__COUNT; k++)
		sbuf_printf(sb, "smtptrace_degraded_total{kind=\"%s\"} %lu\n",
			    log_degraded_name((enum degraded)k),
			    log_degraded_count((enum degraded)k));
}

static void
histogram_reset(struct histogram *h)
{
	for (size_t i = 0; i < BUCKETS_MAX; i++)
		atomic_store(&h->counts[i], 0);
	atomic_store(&h->count, 0);
	atomic_store(&h->sum, 0);
}

void
metrics_reset(void)
{
	atomic_store(&connections_open, 0);
	atomic_store(&connections_total, 0);
	for (int o = 0; o < OUTCOME__COUNT; o++)
		atomic_store(&outcomes[o], 0);
	for (int c = 0; c < 2; c++)
		for (int s = 0; s < REJ_SUBJECTS; s++)
			for (int d = 0; d < REJ_DETAILS; d++)
				atomic_store(&rejected[c][s][d], 0);
	atomic_store(&rejected_other, 0);
	for (int p = 0; p < PM__COUNT; p++)
		histogram_reset(&phase_hist[p]);
	histogram_reset(&upload_seconds);
	histogram_reset(&upload_bytes);
}
