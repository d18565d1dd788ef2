/*
 * NAME
 *	live - every SMTP session open now, and the transactions just ended
 * SYNOPSIS
 *	live_init(&lv); live_recent_alloc(&lv, 1000);	start-up
 *	live_session_open(&lv, s, now);			negotiate or connect
 *	live_session_update(&lv, s, LIVE_RCPT, now);	each phase
 *	live_session_ended(&lv, &record, end_ms);	a transaction ended
 *	live_session_close(&lv, s);			close
 *	n = live_snapshot(&lv, mask, rows, max, &counts);	a reader
 *	n = live_recent(&lv, ended, max);		a reader
 * DESCRIPTION
 *	The table of open sessions is an array of slots, one per session, in
 *	chunks that are allocated as the number of sessions open at once
 *	grows (LIVE_CHUNK_SLOTS at a time, rarely) and never move or go away,
 *	so a reader can look at any slot at any time. A session takes a slot
 *	at its start (a free list under slots_lock, held for a few
 *	instructions, by callbacks only) and gives it back at its close.
 *
 *	Each slot holds its session's row (struct live_row) under a sequence
 *	count (a seqlock): the one thread running the session's callback
 *	makes the count odd, stores the row, makes it even again; a reader
 *	reads the count, the row, the count again, and tries again when the
 *	count was odd or changed. The writer never waits for anything: a
 *	reader holds no lock a callback needs, however many sessions it
 *	lists, and pays for a row changing under it with a retry. The row is
 *	stored and read as atomic words (release stores, acquire loads: on
 *	x86 plain moves), so no access is a data race in C11's terms and
 *	ThreadSanitizer sees none.
 *
 *	The stall warnings of a transaction in DATA are the registry's
 *	(registry.h): the registry stores its count into the slot (one atomic
 *	word beside the row) each time the watchdog warns, under its own lock.
 *
 *	The transactions that ended are a ring of live_recent_size entries
 *	under recent_lock: a callback holds it to copy one entry in; a reader
 *	copies at most LIVE_BATCH entries per hold, then lets go.
 *
 *	Which threads: the libmilter workers write (each session's row only
 *	from the callback of that session); the HTTP thread reads; the
 *	watchdog stores the warning counts. Times are monotonic ms given by
 *	the caller.
 */
#ifndef SMTPTRACE_LIVE_H
#define SMTPTRACE_LIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIVE_TEXT_MAX		128	/* client, HELO, sender, as the stall lines */
#define LIVE_SHORT_MAX		32	/* queue id, TLS version, outcome, reply */
#define LIVE_CHUNK_SLOTS	256
#define LIVE_CHUNKS_MAX		1024	/* 262,144 sessions open at once */
#define LIVE_BATCH		64	/* ring entries copied per hold of recent_lock */
#define LIVE_RECENT_MAX		100000

/* Phases of a session as /transactions shows them; 0 is a free slot. */
enum live_phase {
	LIVE_FREE,
	LIVE_CONNECT,		/* connected, no HELO yet */
	LIVE_HELO,		/* HELO/EHLO said, no transaction open */
	LIVE_MAIL,
	LIVE_RCPT,		/* from the first RCPT */
	LIVE_DATA,		/* DATA seen, no content yet: the upload */
	LIVE_CONTENT,		/* content events arriving, before end of data */
	LIVE__COUNT
};

#define LIVE_PHASE_BIT(p)	(1u << (p))
#define LIVE_ALL_PHASES		(((1u << LIVE__COUNT) - 1) & ~1u)

/* One session as a reader sees it. */
struct live_row {
	char     session[17];
	char     queue_id[LIVE_SHORT_MAX];	/* "": none */
	char     client[LIVE_TEXT_MAX];
	char     helo[LIVE_TEXT_MAX];		/* "": none */
	char     sender[LIVE_TEXT_MAX];		/* meaningful from LIVE_MAIL */
	char     tls[LIVE_SHORT_MAX];		/* "": none */
	uint8_t  phase;				/* enum live_phase */
	unsigned txn;				/* 0 before the first MAIL */
	unsigned rcpt, rcpt_rejected;
	unsigned warnings;			/* stall warnings (filled by the reader) */
	int64_t  connect_at;
	int64_t  since;				/* entered its phase */
};

#define LIVE_ROW_WORDS ((sizeof(struct live_row) + 7) / 8)

struct live_slot {
	atomic_uint           seq;	/* odd while the row is being stored */
	atomic_uint           warnings;	/* the registry's count for the row's DATA */
	unsigned              next_free;	/* slot + 1 on the free list; under slots_lock */
	atomic_uint_least64_t words[LIVE_ROW_WORDS];
};

struct live_chunk {
	struct live_slot slot[LIVE_CHUNK_SLOTS];
};

/* A transaction that ended, as /recent shows it. */
struct live_ended {
	char     session[17];
	char     queue_id[LIVE_SHORT_MAX];
	char     client[LIVE_TEXT_MAX];
	char     helo[LIVE_TEXT_MAX];
	char     sender[LIVE_TEXT_MAX];
	char     outcome[LIVE_SHORT_MAX];
	char     reply[LIVE_SHORT_MAX];		/* "": none implied */
	unsigned txn;
	int64_t  upload_ms;			/* -1: not known */
	int64_t  duration_ms;			/* -1: not known */
	int64_t  ended_at;			/* monotonic ms */
};

struct live {
	_Atomic(struct live_chunk *) chunks[LIVE_CHUNKS_MAX];
	atomic_size_t      used;	/* slots ever handed out: readers look below */
	pthread_mutex_t    slots_lock;	/* the free list and growing; never a reader */
	unsigned           free_head;	/* slot + 1; 0: empty */
	pthread_mutex_t    recent_lock;
	struct live_ended *recent;
	size_t             recent_size;	/* 0: off */
	uint64_t           recent_pushed;	/* entries ever pushed */
	int64_t            started_ms;	/* for uptime */
};

/* Counts over every row a snapshot looked at, listed or not. */
struct live_counts {
	size_t open;		/* sessions open */
	size_t in_data;		/* in LIVE_DATA */
	size_t stalled;		/* of those, warned about at least once */
	size_t matched;		/* in the phases asked for (listed or not) */
};

/* What a session keeps of its row (in struct session). */
struct live_mark {
	unsigned ref;		/* slot + 1; 0: none */
	uint8_t  phase;		/* enum live_phase last published */
	int64_t  since;
};

int  live_init(struct live *lv);
/* The ring of ended transactions (size 0 to LIVE_RECENT_MAX; 0: off); start-up only. */
int  live_recent_alloc(struct live *lv, size_t size);
void live_destroy(struct live *lv);

/* ---- the table, by slot (ref = slot + 1) ---- */

/* A free slot, as a ref; 0 when none could be had (the table is at its cap). */
unsigned live_open(struct live *lv);
/* Store the row of a slot (only its owner's callback calls this). */
void live_publish(struct live *lv, unsigned ref, const struct live_row *row);
/* The count of stall warnings shown with the slot's row (the registry's). */
void live_set_warnings(struct live *lv, unsigned ref, unsigned warnings);
void live_close(struct live *lv, unsigned ref);

/* An upper bound of the rows a snapshot can return now. */
size_t live_rows_max(struct live *lv);
/*
 * Copies of the rows whose phase is in phase_mask (LIVE_PHASE_BIT bits),
 * up to max, in slot order; counts over every row open. Never blocks a
 * writer. A row that kept changing through every retry is left out (and
 * still counted in c->matched).
 */
size_t live_snapshot(struct live *lv, unsigned phase_mask, struct live_row *out,
		     size_t max, struct live_counts *c);

/* ---- the ring of ended transactions ---- */

void   live_recent_push(struct live *lv, const struct live_ended *e);
/* Entries the ring keeps (metrics.recent); 0: off. */
size_t live_recent_size(struct live *lv);
/* Up to max entries, the newest first. */
size_t live_recent(struct live *lv, struct live_ended *out, size_t max);

/* ---- from a session (the callbacks; lv may be NULL: nothing is kept) ---- */

struct session;
struct record;

/* Take a slot and publish the session in LIVE_CONNECT. */
void live_session_open(struct live *lv, struct session *s, int64_t now_ms);
/*
 * The session is in phase now (entered at now_ms if it was in another):
 * its row is stored again with what the session holds. Entering
 * LIVE_DATA clears the stall count shown: call it before the registry
 * watches the transaction.
 */
void live_session_update(struct live *lv, struct session *s, enum live_phase phase,
			 int64_t now_ms);
/* Between transactions: LIVE_HELO, or LIVE_CONNECT before any HELO. */
void live_session_idle(struct live *lv, struct session *s, int64_t now_ms);
/* A transaction ended: its kind=txn record (record_txn) goes into the ring. */
void live_session_ended(struct live *lv, const struct record *rec, int64_t end_ms);
void live_session_close(struct live *lv, struct session *s);

const char *live_phase_name(enum live_phase phase);
/* The phase named (len bytes); -1 when none. */
int live_phase_from_name(const char *name);

#endif
