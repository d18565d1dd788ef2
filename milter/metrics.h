/*
 * NAME
 *	metrics - counters, gauges and histograms in Prometheus' terms
 * SYNOPSIS
 *	metrics_transaction(session, outcome);
 *	metrics_render(&sb, &registry);		text exposition format 0.0.4
 * DESCRIPTION
 *	Process-wide atomic counters (the only mutable globals besides the
 *	configuration and the registry): updated from any libmilter worker
 *	without a lock, read by the HTTP and text-file threads. One
 *	observation per transaction, when it ends. Names, labels and buckets
 *	are stable and documented in README.md; label sets are bounded (the
 *	outcomes the milter decides, six phases, enhanced codes c.s.d with c 4 or 5, s 0-7 and
 *	d 0-39, else "other").
 */
#ifndef SMTPTRACE_METRICS_H
#define SMTPTRACE_METRICS_H

#include <stdint.h>

#include "outcome.h"
#include "registry.h"
#include "sbuf.h"
#include "session.h"

void metrics_connection_open(void);
void metrics_connection_close(void);
/* SMTP connections open now (the sessions libmilter still serves). */
unsigned long metrics_connections_open(void);
/* The session's transaction ended: outcome, phase durations, upload time and size. */
void metrics_transaction(const struct session *s, enum outcome o);
void metrics_rejected(const char *enhanced);
/* Everything, with the registry's gauges (reg may be NULL). */
void metrics_render(struct sbuf *sb, struct registry *reg);
/* Back to zero (tests). */
void metrics_reset(void);

#endif
