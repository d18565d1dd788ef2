/*
 * NAME
 *	top_prom - the few /metrics samples smtptrace-top reads
 * SYNOPSIS
 *	#include "top_prom.h"
 *
 *	int top_metrics_parse(const char *text, size_t len,
 *	    struct top_metrics *m, char *err, size_t errsize);
 * DESCRIPTION
 *	Reads Prometheus' text format (0.0.4) as smtptrace-milter writes it
 *	(milter/metrics.c) and keeps: smtptrace_build_info{version},
 *	smtptrace_connections_open, smtptrace_transactions_in_data,
 *	smtptrace_transactions_stalled, smtptrace_transactions_total by
 *	outcome and the smtptrace_upload_seconds buckets (cumulative, by
 *	le, sorted). Other samples, comments and unknown lines are skipped.
 *	Gauges not seen are NAN. Label values are cut to their field.
 *
 *	Returns -1 with a message in err when the text is HTML or holds no
 *	smtptrace_ sample at all (not smtptrace's /metrics).
 *
 *	Pure: no I/O, no allocation, no global state.
 */
#ifndef SMTPTRACE_TOP_PROM_H
#define SMTPTRACE_TOP_PROM_H

#include <stddef.h>

#define TOP_OUTCOMES_MAX	32
#define TOP_BUCKETS_MAX		32
#define TOP_LABEL_MAX		48

struct top_bucket {
	double le;		/* upper bound; INFINITY for +Inf */
	double count;		/* cumulative */
};

struct top_outcome_total {
	char   name[TOP_LABEL_MAX];
	double total;
};

struct top_metrics {
	char   version[TOP_LABEL_MAX];
	double open, in_data, stalled;
	size_t noutcomes;
	struct top_outcome_total outcomes[TOP_OUTCOMES_MAX];
	size_t nbuckets;
	struct top_bucket upload[TOP_BUCKETS_MAX];
};

int top_metrics_parse(const char *text, size_t len, struct top_metrics *m, char *err,
		      size_t errsize);

#endif
