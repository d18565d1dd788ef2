/*
 * NAME
 *	verdict - join smtptrace's transaction lines with the MTA's log
 * DESCRIPTION
 *	See verdict.h. The pending entries live in one table with string
 *	keys: "q:QID" (a transaction by queue id), "p:PID" (an smtpd
 *	process and the queue id its last "client=" line named), "c:ADDR
 *	HASH" (a NOQUEUE transaction line that ended before DATA, or a
 *	"reject: DATA", by client address and a hash of the sender). The index
 *	is open addressing with linear probing over twice the cap (deletion by
 *	backward shift); two lists in order of last touch (transactions, pids)
 *	give the oldest entry for the quiet window, the cap and the end.
 *	Entries are allocated on first use and kept on a free list for the
 *	next (never more than cap).
 *
 *	Which MTA line wins: the first final one; a line the MTA writes
 *	during the upload (cleanup's reject: header/body, size limit, write
 *	error, discard: header/body) gives way to a final one that follows
 *	(lost connection or timeout after DATA: the client never got the
 *	refusal). Single-threaded.
 *
 *	Sendmail (maillog_sendmail.c) needs two more rules, both by queue
 *	id: it logs no line when it queues a message, so its first delivery
 *	line (proves_queued) also decides "accepted"; and a refused
 *	recipient is a tentative no-valid-recipients (during_upload), made
 *	final by the "from=<..>, size=0, .., nrcpts=0" line that ends a
 *	transaction with no message (MAILLOG_TXN_END), and dropped when that
 *	line counts an accepted recipient. MAILLOG_TXN_END is also Sendmail's
 *	"moved on" for the transaction.
 */
#include "verdict.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

#define KEY_MAX 96

enum pend_kind { PEND_QUEUE, PEND_CLIENT, PEND_PID };

struct pending {
	char            key[KEY_MAX];
	uint64_t        hash;
	struct pending *older, *newer;	/* in order of last touch */
	unsigned long   touched;	/* line number */
	enum pend_kind  kind;
	char            queue_id[MAILLOG_QID_MAX];	/* PEND_PID: its current one */
	bool            have_client, have_milter, moved_on, removed, delivered;
	bool            decided, during_upload;
	enum outcome    decision;
	int             code;
	long long       bytes;
	long            client_port;	/* PEND_CLIENT: the smtptrace line's; -1 */
	char            enhanced[MAILLOG_ENHANCED_MAX];
	char            reply[MAILLOG_REPLY_TEXT_MAX];
	char            evidence[VERDICT_EVIDENCE_MAX];
	char            status[16], dsn[16], relay[96];
	struct maillog_txn milter;
};

/* Entries in order of last touch: the oldest first. */
struct lru {
	struct pending *oldest, *newest;
};

struct verdict_table {
	struct pending **slots;
	size_t           mask;		/* slots - 1, a power of two minus one */
	size_t           count, cap;
	struct lru       txns;		/* queue id and client entries */
	struct lru       pids;		/* smtpd pids: a longer window */
	struct pending  *free_list;
	unsigned long    line, window, pid_window;
	verdict_sink     sink;
	void            *arg;
	struct verdict_stats st;
};

/* ---- the table ---------------------------------------------------------- */

static uint64_t
hash_key(const char *s)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct verdict_table *
verdict_table_create(size_t cap, unsigned long window, verdict_sink sink, void *arg)
{
	struct verdict_table *t = calloc(1, sizeof *t);
	size_t n = 2;

	if (t == NULL || cap == 0 || window == 0) {
		free(t);
		return NULL;
	}
	while (n < cap * 2)
		n *= 2;
	t->slots = calloc(n, sizeof *t->slots);
	if (t->slots == NULL) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	t->cap = cap;
	t->window = window;
	t->pid_window = window > ULONG_MAX / VERDICT_PID_WINDOWS ? ULONG_MAX
								 : window * VERDICT_PID_WINDOWS;
	t->sink = sink;
	t->arg = arg;
	return t;
}

static size_t
slot_of(const struct verdict_table *t, const char *key, uint64_t h)
{
	size_t i = h & t->mask;
	while (t->slots[i] != NULL &&
	       (t->slots[i]->hash != h || strcmp(t->slots[i]->key, key) != 0))
		i = (i + 1) & t->mask;
	return i;
}

static struct pending *
lookup(const struct verdict_table *t, const char *key)
{
	return t->slots[slot_of(t, key, hash_key(key))];
}

static struct lru *
lru_of(struct verdict_table *t, const struct pending *e)
{
	return e->kind == PEND_PID ? &t->pids : &t->txns;
}

static void
unlink_lru(struct verdict_table *t, struct pending *e)
{
	struct lru *l = lru_of(t, e);

	if (e->older)
		e->older->newer = e->newer;
	else
		l->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		l->newest = e->older;
	e->older = e->newer = NULL;
}

static void
touch(struct verdict_table *t, struct pending *e)
{
	struct lru *l = lru_of(t, e);

	e->touched = t->line;
	if (l->newest == e)
		return;
	if (e->older != NULL || l->oldest == e)
		unlink_lru(t, e);
	e->older = l->newest;
	if (l->newest)
		l->newest->newer = e;
	else
		l->oldest = e;
	l->newest = e;
}

/* Out of the index (backward-shift deletion), the list, onto the free list. */
static void
drop(struct verdict_table *t, struct pending *e)
{
	size_t i = slot_of(t, e->key, e->hash), j = i;

	t->slots[i] = NULL;
	for (;;) {
		j = (j + 1) & t->mask;
		if (t->slots[j] == NULL)
			break;
		size_t home = t->slots[j]->hash & t->mask;
		/* move it back unless its home lies cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && home <= i && home > j)) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
	unlink_lru(t, e);
	t->count--;
	e->newer = t->free_list;
	t->free_list = e;
}

static void settle(struct verdict_table *t, struct pending *e);

/* A new entry under key (not present); the oldest is settled if full. */
static struct pending *
create(struct verdict_table *t, const char *key, enum pend_kind kind)
{
	struct pending *e;

	if (t->count >= t->cap) {
		struct pending *old = t->txns.oldest ? t->txns.oldest : t->pids.oldest;
		t->st.settled_early++;
		if (old->have_milter)
			t->st.early_verdicts++;
		settle(t, old);
	}
	if ((e = t->free_list) != NULL)
		t->free_list = e->newer;
	else if ((e = malloc(sizeof *e)) == NULL)
		return NULL;
	memset(e, 0, offsetof(struct pending, milter));
	text_copy(e->key, sizeof e->key, key);
	e->hash = hash_key(e->key);
	e->kind = kind;
	e->code = -1;
	e->bytes = -1;
	e->client_port = -1;
	t->slots[slot_of(t, e->key, e->hash)] = e;
	t->count++;
	touch(t, e);
	return e;
}

static struct pending *
lookup_or_create(struct verdict_table *t, const char *key, enum pend_kind kind)
{
	struct pending *e = lookup(t, key);
	return e != NULL ? e : create(t, key, kind);
}

void
verdict_table_free(struct verdict_table *t)
{
	if (t == NULL)
		return;
	while (t->txns.oldest != NULL)
		drop(t, t->txns.oldest);
	while (t->pids.oldest != NULL)
		drop(t, t->pids.oldest);
	for (struct pending *e = t->free_list, *next; e != NULL; e = next) {
		next = e->newer;
		free(e);
	}
	free(t->slots);
	free(t);
}

/* ---- keys ------------------------------------------------------------- */

/* len bytes of s (not NUL-terminated; NULL: none); a cut copy ends in "...". */
static void
copy_cut(char *dst, size_t size, const char *s, size_t len)
{
	struct sbuf sb;

	sbuf_init(&sb, dst, size);
	if (s != NULL)
		sbuf_putn(&sb, s, len);
	if (sb.overflow && size > sizeof ESCAPE_CUT_MARK)
		memcpy(dst + size - sizeof ESCAPE_CUT_MARK, ESCAPE_CUT_MARK,
		       sizeof ESCAPE_CUT_MARK);
}

/* "q:QID", "p:PID": built without printf, once or twice a line. */
static void
key_queue(char *key, const char *qid)
{
	size_t n = strnlen(qid, KEY_MAX - 3);

	key[0] = 'q';
	key[1] = ':';
	memcpy(key + 2, qid, n);
	key[n + 2] = '\0';
}

static void
key_pid(char *key, long pid)
{
	char digits[24];
	size_t n = 0;
	unsigned long v = pid < 0 ? 0 : (unsigned long)pid;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0 && n < sizeof digits);
	key[0] = 'p';
	key[1] = ':';
	for (size_t i = 0; i < n; i++)
		key[2 + i] = digits[n - 1 - i];
	key[2 + n] = '\0';
}

/* "c:ADDR HASH": the address and the sender without its angle brackets. */
static void
key_client(char *key, const char *addr, const char *sender, size_t len)
{
	char s[MAILLOG_FROM_MAX];
	struct sbuf sb;

	if (len > 0 && sender[0] == '<') {
		sender++;
		len--;
	}
	if (len > 0 && sender[len - 1] == '>')
		len--;
	if (len >= sizeof s)
		len = sizeof s - 1;
	memcpy(s, sender, len);
	s[len] = '\0';
	sbuf_init(&sb, key, KEY_MAX);
	sbuf_printf(&sb, "c:%.64s %016" PRIx64, addr, hash_key(s));
}

static void
key_client_port(char *key, const char *addr, long port)
{
	struct sbuf sb;
	sbuf_init(&sb, key, KEY_MAX);
	sbuf_printf(&sb, "c:%.64s:%ld", addr, port);
}

/* "name[addr]:port" as the milter logs its client: the address and port. */
static bool
split_client(const char *client, char *addr, size_t size, long *port)
{
	const char *open = strchr(client, '['), *close;

	*port = -1;
	if (open == NULL || (close = strchr(open, ']')) == NULL ||
	    (size_t)(close - open - 1) >= size)
		return false;
	memcpy(addr, open + 1, (size_t)(close - open - 1));
	addr[close - open - 1] = '\0';
	if (close[1] == ':')
		*port = strtol(close + 2, NULL, 10);
	return true;
}

/* ---- settling ---------------------------------------------------------- */

/* The reply an outcome implies (421 for a timeout, 250 2.0.0 for a discard), into e. */
static void
implied_reply(struct pending *e)
{
	struct implied_reply r;
	struct sbuf sb;

	outcome_reply(e->decision, NULL, &r);
	if (implied_reply_empty(&r))
		return;
	if (r.code > 0)
		e->code = r.code;
	text_copy(e->enhanced, sizeof e->enhanced, r.enhanced);
	sbuf_init(&sb, e->reply, sizeof e->reply);
	implied_reply_format(&r, &sb);
}

static void
build(struct pending *e, struct verdict *v)
{
	const struct maillog_txn *m = &e->milter;

	*v = (struct verdict){
		.queue_id = e->kind == PEND_PID ? "" : e->queue_id, .txn = m,
		.code = -1, .enhanced = "", .reply = m->reply, .bytes = -1,
		.status = "", .dsn = "", .relay = "", .evidence = "",
		.outcome_id = m->outcome,
	};
	if (e->decided) {
		if (e->code < 0 && e->enhanced[0] == '\0' && e->reply[0] == '\0')
			implied_reply(e);
		v->outcome_id = (int)e->decision;
		v->resolved = true;
		v->code = e->code;
		v->enhanced = e->enhanced;
		v->reply = e->reply;
		v->bytes = e->bytes;
		v->evidence = e->evidence;
		if (e->delivered) {
			v->status = e->status;
			v->dsn = e->dsn;
			v->relay = e->relay;
		}
	} else {
		v->code = m->reply_code;
		v->enhanced = m->reply_enhanced;
		v->resolved = v->by_milter = m->outcome == OUTCOME_NO_VALID_RECIPIENTS;
	}
	v->outcome = v->outcome_id >= 0 ? outcome_name((enum outcome)v->outcome_id)
					: m->outcome_name;
}

/* Hand a transaction with an smtptrace line to the sink. */
static void
emit(struct verdict_table *t, struct pending *e)
{
	struct verdict v;

	build(e, &v);
	t->st.verdicts++;
	t->sink(&v, t->arg);
}

static void
settle(struct verdict_table *t, struct pending *e)
{
	if (e->have_milter && e->kind != PEND_PID)
		emit(t, e);
	drop(t, e);
}

/* Settle e when its evidence is complete (see verdict.h). */
static void
try_complete(struct verdict_table *t, struct pending *e)
{
	bool done;

	if (!e->have_milter)
		return;
	if (!e->decided)
		done = e->moved_on && e->milter.outcome != OUTCOME_ACCEPTED;
	else if (e->decision == OUTCOME_ACCEPTED)
		done = e->delivered || e->removed;
	else
		done = !e->during_upload || e->moved_on;
	if (done)
		settle(t, e);
}

/* ---- the events ---------------------------------------------------------- */

static void
set_milter(struct verdict_table *t, struct pending *e, const struct maillog_txn *m)
{
	e->have_milter = true;
	e->milter = *m;
	touch(t, e);
	try_complete(t, e);
}

/*
 * A NOQUEUE line: joined only when it ended before DATA (a refused DATA).
 * It waits under "c:ADDR HASH"; a "reject: DATA" that logged the client's
 * port waits under "c:ADDR:PORT", one that did not under "c:ADDR HASH".
 */
static void
on_txn_noqueue(struct verdict_table *t, const struct maillog_event *ev)
{
	const struct maillog_txn *m = &ev->txn;
	char key[KEY_MAX], addr[MAILLOG_ADDR_MAX];
	struct pending *e;
	long port;

	if (m->outcome != OUTCOME_ABORTED_BEFORE_DATA ||
	    !split_client(m->client, addr, sizeof addr, &port)) {
		struct pending once;	/* nothing to wait for: settled at once */
		memset(&once, 0, offsetof(struct pending, milter));
		once.kind = PEND_CLIENT;
		once.milter = *m;
		once.have_milter = true;
		emit(t, &once);
		return;
	}
	if (port >= 0) {
		key_client_port(key, addr, port);
		if ((e = lookup(t, key)) != NULL) {
			set_milter(t, e, m);
			return;
		}
	}
	key_client(key, addr, m->from, strlen(m->from));
	if ((e = lookup(t, key)) != NULL && e->have_milter) {
		settle(t, e);		/* an older line of that client and sender */
		e = NULL;
	}
	if (e == NULL && (e = create(t, key, PEND_CLIENT)) == NULL)
		return;
	e->client_port = port;
	set_milter(t, e, m);
}

static void
on_txn(struct verdict_table *t, const struct maillog_event *ev)
{
	char key[KEY_MAX];
	struct pending *e;

	if (ev->queue_id[0] == '\0') {
		on_txn_noqueue(t, ev);
		return;
	}
	key_queue(key, ev->queue_id);
	if ((e = lookup(t, key)) != NULL && e->have_milter) {
		settle(t, e);		/* the queue id came back: a new transaction */
		e = NULL;
	}
	if (e == NULL && (e = create(t, key, PEND_QUEUE)) == NULL)
		return;
	text_copy(e->queue_id, sizeof e->queue_id, ev->queue_id);
	set_milter(t, e, &ev->txn);
}

/* The smtpd that handled qid went on (next transaction or disconnect). */
static void
moved_on(struct verdict_table *t, const char *qid)
{
	char key[KEY_MAX];
	struct pending *e;

	key_queue(key, qid);
	if ((e = lookup(t, key)) == NULL)
		return;
	e->moved_on = true;
	try_complete(t, e);
}

static void
on_client(struct verdict_table *t, const struct maillog_event *ev)
{
	char key[KEY_MAX];
	struct pending *e;

	if (ev->queue_id[0] == '\0')
		return;
	if (ev->pid >= 0) {
		key_pid(key, ev->pid);
		e = lookup(t, key);
		if (e != NULL && strcmp(e->queue_id, ev->queue_id) != 0)
			moved_on(t, e->queue_id);
		if ((e = lookup_or_create(t, key, PEND_PID)) != NULL) {
			text_copy(e->queue_id, sizeof e->queue_id, ev->queue_id);
			touch(t, e);
		}
	}
	key_queue(key, ev->queue_id);
	if ((e = lookup(t, key)) != NULL && e->have_client) {
		settle(t, e);		/* the queue id came back: a new transaction */
		e = NULL;
	}
	if (e == NULL && (e = create(t, key, PEND_QUEUE)) == NULL)
		return;
	text_copy(e->queue_id, sizeof e->queue_id, ev->queue_id);
	e->have_client = true;
	touch(t, e);
	try_complete(t, e);
}

static void
on_session_end(struct verdict_table *t, const struct maillog_event *ev)
{
	char key[KEY_MAX], qid[MAILLOG_QID_MAX];
	struct pending *e;

	if (ev->pid < 0)
		return;
	key_pid(key, ev->pid);
	if ((e = lookup(t, key)) == NULL)
		return;
	text_copy(qid, sizeof qid, e->queue_id);
	drop(t, e);
	moved_on(t, qid);
}

/* The first final line wins; one logged during the upload gives way. */
static void
apply(struct verdict_table *t, struct pending *e, const struct maillog_event *ev)
{
	touch(t, e);
	if (e->decided && (!e->during_upload || ev->during_upload))
		return;
	e->decided = true;
	e->decision = ev->outcome;
	e->during_upload = ev->during_upload;
	e->code = ev->code;
	e->bytes = ev->bytes;
	text_copy(e->enhanced, sizeof e->enhanced, ev->enhanced);
	text_copy(e->reply, sizeof e->reply, ev->reply);
	copy_cut(e->evidence, sizeof e->evidence, ev->message.s, ev->message.len);
	if (e->queue_id[0] == '\0')
		text_copy(e->queue_id, sizeof e->queue_id, ev->queue_id);
	try_complete(t, e);
}

/* A refused DATA also meets a NOQUEUE smtptrace line, by client (see above). */
static void
by_client(struct verdict_table *t, const struct maillog_event *ev)
{
	char key[KEY_MAX];
	struct pending *e;

	key_client(key, ev->client_addr, ev->sender.s, ev->sender.len);
	e = lookup(t, key);
	if (e != NULL && e->have_milter && !e->decided &&
	    (ev->client_port < 0 || e->client_port < 0 || e->client_port == ev->client_port)) {
		apply(t, e, ev);
		return;
	}
	if (ev->client_port >= 0) {	/* else e, if any, is an older refusal */
		key_client_port(key, ev->client_addr, ev->client_port);
		e = lookup(t, key);
	}
	if (e != NULL) {
		settle(t, e);		/* an older refusal nobody claimed */
		e = NULL;
	}
	if ((e = create(t, key, PEND_CLIENT)) != NULL)
		apply(t, e, ev);
}

static void
on_decision(struct verdict_table *t, const struct maillog_event *ev)
{
	char key[KEY_MAX];
	struct pending *e;

	if (ev->by_pid) {
		if (ev->pid < 0)
			return;
		key_pid(key, ev->pid);
		if ((e = lookup(t, key)) == NULL)
			return;
		key_queue(key, e->queue_id);
		if ((e = lookup_or_create(t, key, PEND_QUEUE)) != NULL) {
			text_copy(e->queue_id, sizeof e->queue_id, key + 2);
			apply(t, e, ev);
		}
		return;
	}
	if (ev->queue_id[0] != '\0') {
		key_queue(key, ev->queue_id);
		if ((e = lookup_or_create(t, key, PEND_QUEUE)) != NULL) {
			text_copy(e->queue_id, sizeof e->queue_id, ev->queue_id);
			apply(t, e, ev);
		}
	}
	if (ev->outcome == OUTCOME_REFUSED_AT_DATA && ev->client_addr[0] != '\0' &&
	    ev->sender.s != NULL)
		by_client(t, ev);
}

static struct pending *
lookup_queue(struct verdict_table *t, const struct maillog_event *ev)
{
	char key[KEY_MAX];

	if (ev->queue_id[0] == '\0')
		return NULL;
	key_queue(key, ev->queue_id);
	return lookup(t, key);
}

static struct pending *
queue_entry(struct verdict_table *t, const struct maillog_event *ev)
{
	char key[KEY_MAX];
	struct pending *e;

	if (ev->queue_id[0] == '\0')
		return NULL;
	key_queue(key, ev->queue_id);
	if ((e = lookup_or_create(t, key, PEND_QUEUE)) != NULL)
		text_copy(e->queue_id, sizeof e->queue_id, ev->queue_id);
	return e;
}

static void
on_delivery(struct verdict_table *t, const struct maillog_event *ev)
{
	struct pending *e = ev->proves_queued ? queue_entry(t, ev) : lookup_queue(t, ev);

	if (e == NULL || e->delivered)
		return;
	e->delivered = true;
	copy_cut(e->status, sizeof e->status, ev->status.s, ev->status.len);
	copy_cut(e->dsn, sizeof e->dsn, ev->dsn.s, ev->dsn.len);
	copy_cut(e->relay, sizeof e->relay, ev->relay.s, ev->relay.len);
	touch(t, e);
	if (ev->proves_queued && (!e->decided || e->during_upload))
		apply(t, e, ev);	/* Sendmail: queued, as the line proves */
	else
		try_complete(t, e);
}

/* Sendmail: a transaction with no message is over (see the top). */
static void
on_txn_end(struct verdict_table *t, const struct maillog_event *ev)
{
	struct pending *e = queue_entry(t, ev);

	if (e == NULL)
		return;
	if (e->decided && e->during_upload && e->decision == OUTCOME_NO_VALID_RECIPIENTS) {
		if (ev->rcpts > 0)
			e->decided = false;	/* a recipient was accepted */
		else
			e->during_upload = false;
	}
	e->moved_on = true;
	touch(t, e);
	try_complete(t, e);
}

static void
on_removed(struct verdict_table *t, const struct maillog_event *ev)
{
	struct pending *e = lookup_queue(t, ev);

	if (e == NULL)
		return;
	e->removed = true;
	touch(t, e);
	try_complete(t, e);
}

void
verdict_feed(struct verdict_table *t, const struct maillog_event *ev)
{
	t->line++;
	t->st.lines++;
	switch (ev->kind) {
	case MAILLOG_TXN:		on_txn(t, ev); break;
	case MAILLOG_CLIENT:		on_client(t, ev); break;
	case MAILLOG_DECISION:		on_decision(t, ev); break;
	case MAILLOG_DELIVERY:		on_delivery(t, ev); break;
	case MAILLOG_REMOVED:		on_removed(t, ev); break;
	case MAILLOG_SESSION_END:	on_session_end(t, ev); break;
	case MAILLOG_TXN_END:		on_txn_end(t, ev); break;
	case MAILLOG_OTHER:		break;
	}
	while (t->txns.oldest != NULL && t->line - t->txns.oldest->touched >= t->window) {
		if (t->txns.oldest->have_milter)
			t->st.expired++;
		settle(t, t->txns.oldest);
	}
	/* an smtpd pid waits for its session's end (a data timeout is minutes) */
	while (t->pids.oldest != NULL &&
	       t->line - t->pids.oldest->touched >= t->pid_window)
		settle(t, t->pids.oldest);
}

void
verdict_finish(struct verdict_table *t)
{
	while (t->txns.oldest != NULL)
		settle(t, t->txns.oldest);
	while (t->pids.oldest != NULL)
		settle(t, t->pids.oldest);
}

void
verdict_stats(const struct verdict_table *t, struct verdict_stats *st)
{
	*st = t->st;
	st->cap = t->cap;
}
