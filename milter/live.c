/*
 * NAME
 *	live - every SMTP session open now, and the transactions just ended
 * DESCRIPTION
 *	See live.h for the design (slots under seqlocks, a ring read in
 *	batches). Which threads: see live.h. The memory orders: a writer
 *	stores seq+1 (relaxed), the row's words (release: a reader that sees
 *	one new word also sees seq+1), then seq+2 (release: a reader that
 *	sees it sees the whole row). A reader loads seq (acquire), the words
 *	(acquire), seq again: equal and even, the copy is one whole row.
 *	No fences: ThreadSanitizer does not model them.
 */
#include "live.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "log.h"
#include "record.h"
#include "registry.h"
#include "session.h"

#define READ_TRIES	200	/* then the row is left out of that snapshot */
#define READ_SPINS	8	/* tries before yielding to the writer */

_Static_assert(LIVE__COUNT <= 32, "phase mask");
_Static_assert(LIVE_ROW_WORDS * 8 >= sizeof(struct live_row), "row words");

static const char *const phase_names[LIVE__COUNT] = {
	[LIVE_FREE] = "free",
	[LIVE_CONNECT] = "connect",
	[LIVE_HELO] = "helo",
	[LIVE_MAIL] = "mail",
	[LIVE_RCPT] = "rcpt",
	[LIVE_DATA] = "data",
	[LIVE_CONTENT] = "content",
};

const char *
live_phase_name(enum live_phase phase)
{
	return (unsigned)phase < LIVE__COUNT ? phase_names[phase] : "?";
}

int
live_phase_from_name(const char *name)
{
	for (int p = LIVE_CONNECT; p < LIVE__COUNT; p++)
		if (name != NULL && strcmp(name, phase_names[p]) == 0)
			return p;
	return -1;
}

int
live_init(struct live *lv)
{
	memset(lv, 0, sizeof *lv);
	for (size_t i = 0; i < LIVE_CHUNKS_MAX; i++)
		atomic_init(&lv->chunks[i], NULL);
	atomic_init(&lv->used, 0);
	lv->started_ms = registry_clock_ms();
	if (pthread_mutex_init(&lv->slots_lock, NULL) != 0)
		return -1;
	if (pthread_mutex_init(&lv->recent_lock, NULL) != 0) {
		pthread_mutex_destroy(&lv->slots_lock);
		return -1;
	}
	return 0;
}

int
live_recent_alloc(struct live *lv, size_t size)
{
	struct live_ended *ring = NULL;

	if (size > LIVE_RECENT_MAX)
		size = LIVE_RECENT_MAX;
	if (size > 0 && (ring = calloc(size, sizeof *ring)) == NULL)
		return -1;
	pthread_mutex_lock(&lv->recent_lock);
	free(lv->recent);
	lv->recent = ring;
	lv->recent_size = size;
	lv->recent_pushed = 0;
	pthread_mutex_unlock(&lv->recent_lock);
	return 0;
}

void
live_destroy(struct live *lv)
{
	for (size_t i = 0; i < LIVE_CHUNKS_MAX; i++) {
		free(atomic_load(&lv->chunks[i]));
		atomic_store(&lv->chunks[i], NULL);
	}
	free(lv->recent);
	lv->recent = NULL;
	lv->recent_size = 0;
	pthread_mutex_destroy(&lv->recent_lock);
	pthread_mutex_destroy(&lv->slots_lock);
}

/* ---- the table -------------------------------------------------------- */

/* The slot of a ref below `used`; NULL for 0 or one never handed out. */
static struct live_slot *
slot_of(struct live *lv, unsigned ref)
{
	if (ref == 0 || ref > atomic_load_explicit(&lv->used, memory_order_acquire))
		return NULL;
	size_t i = ref - 1;
	struct live_chunk *c = atomic_load_explicit(&lv->chunks[i / LIVE_CHUNK_SLOTS],
						    memory_order_acquire);
	return c != NULL ? &c->slot[i % LIVE_CHUNK_SLOTS] : NULL;
}

/* One more slot at the end, in a new chunk when the last is full; 0: none. */
static unsigned
grow_locked(struct live *lv)
{
	size_t used = atomic_load_explicit(&lv->used, memory_order_relaxed);
	size_t chunk = used / LIVE_CHUNK_SLOTS;

	if (chunk >= LIVE_CHUNKS_MAX)
		return 0;
	if (atomic_load_explicit(&lv->chunks[chunk], memory_order_relaxed) == NULL) {
		/* calloc: every slot free (phase 0), every count 0 */
		struct live_chunk *c = calloc(1, sizeof *c);
		if (c == NULL)
			return 0;
		atomic_store_explicit(&lv->chunks[chunk], c, memory_order_release);
	}
	atomic_store_explicit(&lv->used, used + 1, memory_order_release);
	return (unsigned)used + 1;
}

unsigned
live_open(struct live *lv)
{
	unsigned ref;

	pthread_mutex_lock(&lv->slots_lock);
	struct live_slot *sl = slot_of(lv, lv->free_head);
	if (sl != NULL) {
		ref = lv->free_head;
		lv->free_head = sl->next_free;
	} else {
		ref = grow_locked(lv);
	}
	pthread_mutex_unlock(&lv->slots_lock);
	return ref;
}

static void
store_row(struct live_slot *sl, const struct live_row *row)
{
	union {
		struct live_row row;
		uint64_t        w[LIVE_ROW_WORDS];
	} u;
	unsigned seq = atomic_load_explicit(&sl->seq, memory_order_relaxed);

	memset(&u, 0, sizeof u);
	u.row = *row;
	atomic_store_explicit(&sl->seq, seq + 1, memory_order_relaxed);
	for (size_t i = 0; i < LIVE_ROW_WORDS; i++)
		atomic_store_explicit(&sl->words[i], u.w[i], memory_order_release);
	atomic_store_explicit(&sl->seq, seq + 2, memory_order_release);
}

/* One whole row of the slot, with its stall count; false when it kept changing. */
static bool
load_row(struct live_slot *sl, struct live_row *out)
{
	union {
		struct live_row row;
		uint64_t        w[LIVE_ROW_WORDS];
	} u;

	for (int tries = 0; tries < READ_TRIES; tries++) {
		if (tries >= READ_SPINS)
			sched_yield();	/* the writer may be preempted mid-row */
		unsigned before = atomic_load_explicit(&sl->seq, memory_order_acquire);
		if (before & 1)
			continue;
		for (size_t i = 0; i < LIVE_ROW_WORDS; i++)
			u.w[i] = atomic_load_explicit(&sl->words[i], memory_order_acquire);
		unsigned warnings = atomic_load_explicit(&sl->warnings, memory_order_acquire);
		if (atomic_load_explicit(&sl->seq, memory_order_relaxed) == before) {
			*out = u.row;
			out->warnings = warnings;
			return true;
		}
	}
	return false;
}

void
live_publish(struct live *lv, unsigned ref, const struct live_row *row)
{
	struct live_slot *sl = slot_of(lv, ref);

	if (sl != NULL)
		store_row(sl, row);
}

void
live_set_warnings(struct live *lv, unsigned ref, unsigned warnings)
{
	struct live_slot *sl = slot_of(lv, ref);

	if (sl != NULL)
		atomic_store_explicit(&sl->warnings, warnings, memory_order_release);
}

void
live_close(struct live *lv, unsigned ref)
{
	static const struct live_row free_row;	/* phase LIVE_FREE */
	struct live_slot *sl = slot_of(lv, ref);

	if (sl == NULL)
		return;
	store_row(sl, &free_row);
	atomic_store_explicit(&sl->warnings, 0, memory_order_release);
	pthread_mutex_lock(&lv->slots_lock);
	sl->next_free = lv->free_head;
	lv->free_head = ref;
	pthread_mutex_unlock(&lv->slots_lock);
}

size_t
live_rows_max(struct live *lv)
{
	return atomic_load_explicit(&lv->used, memory_order_acquire);
}

size_t
live_snapshot(struct live *lv, unsigned phase_mask, struct live_row *out,
	      size_t max, struct live_counts *c)
{
	size_t used = atomic_load_explicit(&lv->used, memory_order_acquire);
	size_t n = 0;
	struct live_row row;

	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < used; i++) {
		struct live_slot *sl = slot_of(lv, (unsigned)i + 1);
		if (sl == NULL)
			continue;
		if (!load_row(sl, &row)) {
			c->open++;		/* busy all along: it is in use */
			c->matched++;
			continue;
		}
		if (row.phase == LIVE_FREE || row.phase >= LIVE__COUNT)
			continue;
		c->open++;
		if (row.phase == LIVE_DATA) {
			c->in_data++;
			if (row.warnings > 0)
				c->stalled++;
		}
		if (row.phase != LIVE_DATA && row.phase != LIVE_CONTENT)
			row.warnings = 0;	/* the count of an earlier transaction */
		if (!(phase_mask & LIVE_PHASE_BIT(row.phase)))
			continue;
		c->matched++;
		if (n < max)
			out[n++] = row;
	}
	return n;
}

/* ---- the ring ------------------------------------------------------------ */

void
live_recent_push(struct live *lv, const struct live_ended *e)
{
	pthread_mutex_lock(&lv->recent_lock);
	if (lv->recent_size > 0) {
		lv->recent[lv->recent_pushed % lv->recent_size] = *e;
		lv->recent_pushed++;
	}
	pthread_mutex_unlock(&lv->recent_lock);
}

size_t
live_recent_size(struct live *lv)
{
	pthread_mutex_lock(&lv->recent_lock);
	size_t size = lv->recent_size;
	pthread_mutex_unlock(&lv->recent_lock);
	return size;
}

size_t
live_recent(struct live *lv, struct live_ended *out, size_t max)
{
	size_t n = 0;
	uint64_t newest;	/* entry number + 1 of the newest at the start */

	pthread_mutex_lock(&lv->recent_lock);
	newest = lv->recent_pushed;
	pthread_mutex_unlock(&lv->recent_lock);
	while (n < max && n < newest) {
		bool more = true;
		pthread_mutex_lock(&lv->recent_lock);
		uint64_t kept_from = lv->recent_pushed > lv->recent_size
			? lv->recent_pushed - lv->recent_size : 0;
		for (size_t batch = 0; batch < LIVE_BATCH && n < max; batch++) {
			uint64_t k = newest - 1 - n;	/* the entry wanted next */
			if (lv->recent_size == 0 || k < kept_from) {
				more = false;	/* overwritten since the start */
				break;
			}
			out[n++] = lv->recent[k % lv->recent_size];
			if (k == 0) {
				more = false;
				break;
			}
		}
		pthread_mutex_unlock(&lv->recent_lock);
		if (!more)
			break;
	}
	return n;
}

/* ---- from a session ------------------------------------------------------ */

static const char *
helo_of(const struct session *s)
{
	return s->helo[0] != '\0' ? s->helo : s->helo_before_tls;
}

static void
publish_session(struct live *lv, const struct session *s)
{
	const struct txn *t = &s->txn;
	struct live_row row;

	memset(&row, 0, sizeof row);
	text_copy(row.session, sizeof row.session, s->id);
	record_client(s, row.client, sizeof row.client);
	text_copy(row.helo, sizeof row.helo, helo_of(s));
	text_copy(row.tls, sizeof row.tls, s->tls_version);
	row.phase = s->live.phase;
	row.txn = t->seq;
	row.connect_at = s->connect_at;
	row.since = s->live.since;
	if (s->live.phase >= LIVE_MAIL) {
		text_copy(row.sender, sizeof row.sender, t->sender);
		text_copy(row.queue_id, sizeof row.queue_id, t->queue_id);
		row.rcpt = t->rcpt_accepted;
		row.rcpt_rejected = t->rcpt_rejected;
	}
	live_publish(lv, s->live.ref, &row);
}

void
live_session_open(struct live *lv, struct session *s, int64_t now_ms)
{
	if (lv == NULL || s->live.ref != 0)
		return;
	s->live.ref = live_open(lv);
	if (s->live.ref == 0) {
		log_degraded(DEGRADED_REGISTRY_FULL, "sessions");
		return;
	}
	s->live.phase = LIVE_CONNECT;
	s->live.since = now_ms;
	publish_session(lv, s);
}

void
live_session_update(struct live *lv, struct session *s, enum live_phase phase,
		    int64_t now_ms)
{
	if (lv == NULL || s->live.ref == 0)
		return;
	if (phase == s->live.phase && phase == LIVE_CONTENT)
		return;		/* later content events change nothing shown */
	if (phase != s->live.phase) {
		s->live.phase = (uint8_t)phase;
		/* connected since the connect event (a negotiation comes first) */
		s->live.since = phase == LIVE_CONNECT ? s->connect_at : now_ms;
		if (phase == LIVE_DATA)
			live_set_warnings(lv, s->live.ref, 0);
	} else if (phase == LIVE_CONNECT) {
		s->live.since = s->connect_at;
	}
	publish_session(lv, s);
}

void
live_session_idle(struct live *lv, struct session *s, int64_t now_ms)
{
	if (s == NULL)
		return;
	live_session_update(lv, s, s->helo_count > 0 ? LIVE_HELO : LIVE_CONNECT, now_ms);
}

static void
copy_field(const struct record *rec, const char *key, char *dst, size_t size)
{
	const struct field *f = record_get(rec, key);

	text_copy(dst, size, f != NULL && f->kind == FIELD_TEXT ? f->text : NULL);
}

static int64_t
num_field(const struct record *rec, const char *key)
{
	const struct field *f = record_get(rec, key);

	return f != NULL && f->kind == FIELD_NUM ? f->num : -1;
}

void
live_session_ended(struct live *lv, const struct record *rec, int64_t end_ms)
{
	struct live_ended e;

	if (lv == NULL || lv->recent_size == 0)
		return;
	memset(&e, 0, sizeof e);
	copy_field(rec, "session", e.session, sizeof e.session);
	text_copy(e.queue_id, sizeof e.queue_id, rec->queue_id);
	copy_field(rec, "client", e.client, sizeof e.client);
	copy_field(rec, "helo", e.helo, sizeof e.helo);
	if (e.helo[0] == '\0')
		copy_field(rec, "helo_before_tls", e.helo, sizeof e.helo);
	copy_field(rec, "from", e.sender, sizeof e.sender);
	copy_field(rec, "outcome", e.outcome, sizeof e.outcome);
	copy_field(rec, "reply", e.reply, sizeof e.reply);
	int64_t txn = num_field(rec, "txn");
	e.txn = txn > 0 ? (unsigned)txn : 0;
	e.upload_ms = num_field(rec, "upload_ms");
	e.duration_ms = num_field(rec, "duration_ms");
	e.ended_at = end_ms;
	live_recent_push(lv, &e);
}

void
live_session_close(struct live *lv, struct session *s)
{
	if (lv == NULL || s->live.ref == 0)
		return;
	live_close(lv, s->live.ref);
	s->live.ref = 0;
	s->live.phase = LIVE_FREE;
}
