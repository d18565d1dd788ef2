/*
 * NAME
 *	registry - the sessions open now; those in DATA, and when each one stalls
 * SYNOPSIS
 *	registry_init(&reg, warn_after_ms, repeat_ms);
 *	registry_add(&reg, &txn->stall, now_ms);	at DATA
 *	registry_remove(&reg, &txn->stall);		first content, abort, close
 *	n = registry_wait_due(&reg, out, max);		the watchdog thread
 * DESCRIPTION
 *	After 354 the MTA tells a milter nothing until the client has sent
 *	the final dot; only a timer inside the milter sees a stall while it
 *	lasts. Each transaction in DATA has an entry (living in its struct
 *	txn: no allocation per transaction) on a list and, while a warning is
 *	still to come, in a binary heap ordered by the time of its next
 *	warning. One mutex guards it all; every call holds it for a short,
 *	bounded time (the heap grows by doubling, rarely). The watchdog sleeps
 *	on a condition variable until the earliest deadline, not polling.
 *	Entries copy what a warning line needs at registry_add, so the
 *	watchdog never reads a session that its own thread may be changing.
 *	Functions taking now_ms are pure bookkeeping: tests drive them with
 *	a fake clock; registry_wait_due uses CLOCK_MONOTONIC.
 *
 *	The registry also holds the table of every session open and the ring
 *	of transactions just ended (reg->live, live.h), which /transactions
 *	and /recent read without this mutex. An entry names its session's
 *	slot there (live_ref): each warning stores the entry's count into
 *	that slot, so a row in DATA shows its warnings.
 */
#ifndef SMTPTRACE_REGISTRY_H
#define SMTPTRACE_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "live.h"

#define REGISTRY_TEXT_MAX 128

/* What a stall warning shows of one transaction. */
struct stall_view {
	char     session[17];
	unsigned txn;
	char     queue_id[32];
	char     client[REGISTRY_TEXT_MAX];
	char     helo[REGISTRY_TEXT_MAX];
	char     sender[REGISTRY_TEXT_MAX];
	unsigned rcpt;
	int64_t  data_at;	/* monotonic ms of DATA */
	int64_t  in_data_ms;	/* at the time of the view */
	unsigned warnings;	/* warnings so far (this one included, in a warning) */
};

struct stall_entry {
	struct stall_view   view;
	int64_t             next_warn_at;	/* heap key */
	size_t              heap_index;		/* REGISTRY_NOT_IN_HEAP when not */
	bool                registered;
	unsigned            live_ref;	/* its session's slot in reg->live; 0: none */
	struct stall_entry *prev, *next;
};

#define REGISTRY_NOT_IN_HEAP ((size_t)-1)

struct registry {
	pthread_mutex_t      lock;
	pthread_cond_t       changed;	/* new earliest deadline, or stopping */
	int64_t              warn_after_ms;
	int64_t              repeat_ms;	/* 0: warn once */
	struct stall_entry  *head, *tail;	/* newest, oldest */
	size_t               count;	/* entries: transactions in DATA */
	size_t               stalled;	/* of those, warned at least once */
	unsigned long        stalls_total;	/* transactions ever warned about */
	struct stall_entry **heap;
	size_t               heap_len, heap_cap;
	bool                 stopping;
	struct live          live;	/* every session open (live.h); its own locks */
};

int  registry_init(struct registry *reg, int64_t warn_after_ms, int64_t repeat_ms);
/* New timing (a reload): for the transactions that enter DATA from now on. */
void registry_set_timing(struct registry *reg, int64_t warn_after_ms, int64_t repeat_ms);
void registry_destroy(struct registry *reg);

/* Start watching (view filled by the caller); -1 when out of memory. */
int  registry_add(struct registry *reg, struct stall_entry *e, int64_t now_ms);
/* Stop watching; a no-op for an entry not registered. Returns its warnings. */
unsigned registry_remove(struct registry *reg, struct stall_entry *e);

/* The entries due at now_ms, up to max: copied to out, rescheduled or done. */
size_t registry_due(struct registry *reg, int64_t now_ms,
		    struct stall_view *out, size_t max);
/* Earliest next warning; -1 when none is due ever. */
int64_t registry_next_deadline(struct registry *reg);
/*
 * Block until at least one entry is due (then as registry_due) or the
 * registry is stopping (then 0).
 */
size_t registry_wait_due(struct registry *reg, struct stall_view *out, size_t max);
void registry_stop(struct registry *reg);

/* The timing transactions entering DATA now get (ms). */
void registry_timing(struct registry *reg, int64_t *warn_after_ms, int64_t *repeat_ms);
/* One consistent reading of the gauges and the stall counter. */
void registry_counts(struct registry *reg, size_t *in_data, size_t *stalled,
		     unsigned long *stalls_total);

int64_t registry_clock_ms(void);

#endif
