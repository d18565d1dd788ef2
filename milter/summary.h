/*
 * NAME
 *	summary - the --verdicts report an operator mails to themselves
 * SYNOPSIS
 *	struct summary *s = summary_create();
 *	summary_add(s, &verdict);	for each settled verdict
 *	summary_report(s, &sb);		at the end: lines of at most 80 columns
 *	summary_free(s);
 * DESCRIPTION
 *	Counts what smtptrace-explain --verdicts settled: transactions by
 *	verdict (count and share, and how many the MTA's log resolved); the
 *	refusals by reply code and enhanced code, with the knowledge base's
 *	words for each (codes_summary); upload time percentiles from upload_ms
 *	(p50, p90, p99, max); the clients with the most stalled, abandoned and
 *	timed-out uploads; rejected recipients by enhanced code (from the
 *	smtptrace lines' rejects field; "+N more" counted as "(not listed)").
 *
 *	Constant memory: upload times go into a fixed log-scale histogram
 *	(16 buckets per power of two: a percentile is within about 6% of the
 *	true value; max is exact). Refusals, rejected-recipient codes and
 *	clients are kept in fixed tables (SUMMARY_KEYS, SUMMARY_CLIENTS); a
 *	refusal or code past a full table is counted as "(others)"; clients
 *	use the space-saving scheme (a new client replaces the one with the
 *	smallest count, inheriting it), so the top 10 is exact unless more
 *	than SUMMARY_CLIENTS clients compete, and then may over-count the
 *	smallest of them (the report says so). Pure: no I/O.
 */
#ifndef SMTPTRACE_SUMMARY_H
#define SMTPTRACE_SUMMARY_H

#include "sbuf.h"
#include "verdict.h"

#define SUMMARY_KEYS	64	/* distinct refusals, distinct reject codes */
#define SUMMARY_CLIENTS	256	/* clients tracked for the upload problems */
#define SUMMARY_WIDTH	80

struct summary;

struct summary *summary_create(void);
void summary_free(struct summary *s);
void summary_add(struct summary *s, const struct verdict *v);
void summary_report(const struct summary *s, struct sbuf *sb);

#endif
