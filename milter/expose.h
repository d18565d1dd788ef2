/*
 * NAME
 *	expose - what the HTTP listener and the text file serve, as text
 * SYNOPSIS
 *	char *body = expose_metrics(&registry, &len);		malloc'd
 *	char *body = expose_sessions(&registry, &query, now_ms, &len);
 *	char *body = expose_recent(&registry, 0, now_ms, wall_ms, &len);
 * DESCRIPTION
 *	Renders the Prometheus exposition (metrics.c), the /transactions
 *	JSON document (every session open, from the registry's table of open
 *	sessions, live.h) and the /recent one (the transactions that ended
 *	last) into one malloc'd buffer each, sized to fit (it grows and
 *	retries when a render overflows, up to EXPOSE_MAX_SIZE). No I/O. The
 *	sessions are copied without a lock a callback needs (live.h's
 *	seqlocks), the recent ones in short batches; every string is escaped
 *	for JSON. NULL when out of memory.
 */
#ifndef SMTPTRACE_EXPOSE_H
#define SMTPTRACE_EXPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

#define EXPOSE_MAX_SIZE		(32 * 1024 * 1024)

char *expose_metrics(struct registry *reg, size_t *len);

#define EXPOSE_ROWS_DEFAULT	1000
#define EXPOSE_ROWS_MAX		20000

struct expose_query {
	unsigned phase_mask;	/* LIVE_PHASE_BIT() bits; 0: every phase */
	size_t   limit;		/* 0: EXPOSE_ROWS_DEFAULT; EXPOSE_ROWS_MAX at most */
};

/*
 * GET /transactions: the sessions in the phases asked for, the longest
 * in its phase first, at most limit of them and no more than fit
 * EXPOSE_MAX_SIZE; "open", "in_data" and "stalled" count every session,
 * "count" those listed, "truncated" says when some asked for were left
 * out.
 */
char *expose_sessions(struct registry *reg, const struct expose_query *q,
		      int64_t now_ms, size_t *len);
/* The same with ?phase=data: the transactions in DATA only. */
char *expose_transactions(struct registry *reg, int64_t now_ms, size_t limit,
			  size_t *len);
/*
 * GET /recent: at most limit (as above) of the transactions that ended
 * last, the newest first. wall_ms is the wall clock at now_ms (the end
 * times are told in UTC).
 */
char *expose_recent(struct registry *reg, size_t limit, int64_t now_ms,
		    int64_t wall_ms, size_t *len);

#endif
