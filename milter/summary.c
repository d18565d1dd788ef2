/*
 * NAME
 *	summary - the --verdicts report an operator mails to themselves
 * DESCRIPTION
 *	See summary.h. Each section is one function; every line is built to
 *	fit SUMMARY_WIDTH columns (long client names are cut with "...", the
 *	knowledge base's sentences are word-wrapped).
 */
#include "summary.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "escape.h"

#define SUB_BITS	4		/* 16 buckets per power of two */
#define SUB		(1 << SUB_BITS)
#define BUCKETS		(SUB + 60 * SUB)	/* up to 2^63 ms */
#define TOP		10
#define CLIENT_COLS	40

struct refusal {
	int       code;			/* -1: not logged */
	char      enhanced[MAILLOG_ENHANCED_MAX];
	char      example[120];		/* the first reply seen */
	unsigned long count;
};

struct status_count {
	char      enhanced[MAILLOG_ENHANCED_MAX];
	unsigned long count;
};

struct client_count {
	char      client[MAILLOG_CLIENT_MAX];	/* "name[addr]", no port */
	unsigned long stalled, abandoned, timed_out, total;
	unsigned long inherited;	/* space-saving: counted for a replaced one */
};

struct summary {
	unsigned long   by_outcome[OUTCOME__COUNT + 1];	/* last: unknown names */
	unsigned long   total, by_log, by_milter;
	struct refusal  refusals[SUMMARY_KEYS];
	size_t          nrefusals;
	unsigned long   other_refusals;
	uint64_t        upload[BUCKETS];
	unsigned long   uploads;
	long long       upload_max;
	struct client_count clients[SUMMARY_CLIENTS];
	size_t          nclients;
	bool            clients_replaced;
	struct status_count rejects[SUMMARY_KEYS];
	size_t          nrejects;
	unsigned long   rejects_other, rejects_unlisted, rejected_rcpts;
};

struct summary *
summary_create(void)
{
	return calloc(1, sizeof(struct summary));
}

void
summary_free(struct summary *s)
{
	free(s);
}

/* ---- gathering --------------------------------------------------------- */

static size_t
bucket_of(long long ms)
{
	uint64_t v = ms < 0 ? 0 : (uint64_t)ms;

	if (v < SUB)
		return (size_t)v;
	int e = 63 - __builtin_clzll(v);		/* >= SUB_BITS */
	size_t idx = SUB + (size_t)(e - SUB_BITS) * SUB +
		     (size_t)((v >> (e - SUB_BITS)) & (SUB - 1));
	return idx < BUCKETS ? idx : BUCKETS - 1;
}

/* The largest value of a bucket (a percentile is reported as that). */
static long long
bucket_top(size_t idx)
{
	if (idx < SUB)
		return (long long)idx;
	int e = (int)((idx - SUB) / SUB) + SUB_BITS;
	uint64_t sub = (idx - SUB) % SUB;
	uint64_t low = ((uint64_t)SUB + sub) << (e - SUB_BITS);
	return (long long)(low + (1ULL << (e - SUB_BITS)) - 1);
}

static void
add_refusal(struct summary *s, const struct verdict *v)
{
	for (size_t i = 0; i < s->nrefusals; i++) {
		struct refusal *r = &s->refusals[i];
		if (r->code == v->code && strcmp(r->enhanced, v->enhanced) == 0) {
			r->count++;
			return;
		}
	}
	if (s->nrefusals == SUMMARY_KEYS) {
		s->other_refusals++;
		return;
	}
	struct refusal *r = &s->refusals[s->nrefusals++];
	r->code = v->code;
	text_copy(r->enhanced, sizeof r->enhanced, v->enhanced);
	text_copy(r->example, sizeof r->example, v->reply);
	r->count = 1;
}

/* "name[addr]" of "name[addr]:port". */
static void
client_key(const char *client, char *key, size_t size)
{
	const char *close = strchr(client, ']');
	size_t n = close != NULL ? (size_t)(close - client + 1) : strlen(client);

	if (n >= size)
		n = size - 1;
	memcpy(key, client, n);
	key[n] = '\0';
}

/* Space-saving: a new client past a full table replaces the smallest. */
static struct client_count *
client_slot(struct summary *s, const char *client)
{
	char key[MAILLOG_CLIENT_MAX];
	struct client_count *min = NULL;

	client_key(client, key, sizeof key);
	for (size_t i = 0; i < s->nclients; i++) {
		if (strcmp(s->clients[i].client, key) == 0)
			return &s->clients[i];
		if (min == NULL || s->clients[i].total < min->total)
			min = &s->clients[i];
	}
	if (s->nclients < SUMMARY_CLIENTS) {
		min = &s->clients[s->nclients++];
		memset(min, 0, sizeof *min);
	} else {
		unsigned long inherited = min->total;
		memset(min, 0, sizeof *min);
		min->total = min->inherited = inherited;
		s->clients_replaced = true;
	}
	text_copy(min->client, sizeof min->client, key);
	return min;
}

static void
add_client(struct summary *s, const struct verdict *v)
{
	bool abandoned = v->outcome_id == OUTCOME_ABANDONED_AFTER_354;
	bool timed_out = v->outcome_id == OUTCOME_TIMEOUT_AFTER_354;

	if (!v->txn->stalled && !abandoned && !timed_out)
		return;
	struct client_count *c = client_slot(s, v->txn->client);
	c->stalled += v->txn->stalled;
	c->abandoned += abandoned;
	c->timed_out += timed_out;
	c->total++;
}

static void
count_status(struct summary *s, const char *enhanced, size_t len)
{
	for (size_t i = 0; i < s->nrejects; i++)
		if (strlen(s->rejects[i].enhanced) == len &&
		    memcmp(s->rejects[i].enhanced, enhanced, len) == 0) {
			s->rejects[i].count++;
			return;
		}
	if (s->nrejects == SUMMARY_KEYS || len >= MAILLOG_ENHANCED_MAX) {
		s->rejects_other++;
		return;
	}
	struct status_count *c = &s->rejects[s->nrejects++];
	memcpy(c->enhanced, enhanced, len);
	c->enhanced[len] = '\0';
	c->count = 1;
}

/* "5.7.1": a class digit and two dotted numbers of 1-3 digits. */
static bool
is_enhanced(const char *p, size_t len)
{
	size_t i = 1, parts = 0;

	if (len < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5'))
		return false;
	while (i < len && p[i] == '.' && parts < 2) {
		size_t digits = 0;
		for (i++; i < len && p[i] >= '0' && p[i] <= '9' && digits < 4; i++)
			digits++;
		if (digits == 0 || digits > 3)
			return false;
		parts++;
	}
	return parts == 2 && i == len;
}

/* "<a@b> 5.7.1 text; <c@d> 5.1.1 text; +3 more": the codes. */
static void
add_rejects(struct summary *s, const struct maillog_txn *m)
{
	const char *p = m->rejects;

	if (m->rcpt_rejected > 0)
		s->rejected_rcpts += (unsigned long)m->rcpt_rejected;
	while (*p != '\0') {
		const char *end = strstr(p, "; ");
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (p[0] == '+') {
			s->rejects_unlisted += strtoul(p + 1, NULL, 10);
		} else {
			/* the first word after the address that is a status code */
			const char *w = p, *stop = p + n;
			size_t wlen = 0;
			while ((w = memchr(w, ' ', (size_t)(stop - w))) != NULL) {
				w++;
				wlen = strcspn(w, " ;");
				if (w + wlen > stop)
					wlen = (size_t)(stop - w);
				if (is_enhanced(w, wlen))
					break;
			}
			if (w != NULL)
				count_status(s, w, wlen);
			else
				s->rejects_other++;
		}
		p += n;
		if (*p != '\0')
			p += 2;
	}
}

void
summary_add(struct summary *s, const struct verdict *v)
{
	int o = v->outcome_id >= 0 && v->outcome_id < OUTCOME__COUNT ?
		v->outcome_id : OUTCOME__COUNT;

	s->total++;
	s->by_outcome[o]++;
	if (v->resolved && v->by_milter)
		s->by_milter++;
	else if (v->resolved)
		s->by_log++;
	if (o == OUTCOME_REFUSED_AFTER_354 || o == OUTCOME_REFUSED_AT_DATA)
		add_refusal(s, v);
	if (v->txn->upload_ms >= 0) {
		s->upload[bucket_of(v->txn->upload_ms)]++;
		s->uploads++;
		if (v->txn->upload_ms > s->upload_max)
			s->upload_max = v->txn->upload_ms;
	}
	add_client(s, v);
	if (v->txn->rejects[0] != '\0' || v->txn->rcpt_rejected > 0)
		add_rejects(s, v->txn);
}

/* ---- the report ---------------------------------------------------------- */

/* Word-wrap text at SUMMARY_WIDTH, every line indented. */
static void
put_wrapped(struct sbuf *sb, int indent, const char *text)
{
	int col = 0;

	while (*text != '\0') {
		while (*text == ' ')
			text++;
		int word = (int)strcspn(text, " ");
		if (word == 0)
			break;
		if (col > indent && col + 1 + word > SUMMARY_WIDTH) {
			sbuf_putc(sb, '\n');
			col = 0;
		}
		if (col == 0) {
			sbuf_printf(sb, "%*s", indent, "");
			col = indent;
		} else {
			sbuf_putc(sb, ' ');
			col++;
		}
		if (col + word > SUMMARY_WIDTH)	/* one word longer than a line */
			word = SUMMARY_WIDTH - col;
		sbuf_putn(sb, text, (size_t)word);
		col += word;
		text += strcspn(text, " ");
	}
	if (col > 0)
		sbuf_putc(sb, '\n');
}

static double
percent(unsigned long n, unsigned long total)
{
	return total ? 100.0 * (double)n / (double)total : 0.0;
}

static void
report_verdicts(const struct summary *s, struct sbuf *sb)
{
	unsigned long unresolved = s->total - s->by_log - s->by_milter;

	sbuf_printf(sb, "%-40s %10lu %7s\n", "Transactions", s->total, "%");
	sbuf_printf(sb, "  %-38s %10lu %7.1f\n", "settled by the MTA's log", s->by_log,
		    percent(s->by_log, s->total));
	sbuf_printf(sb, "  %-38s %10lu %7.1f\n", "settled by what smtptrace saw",
		    s->by_milter, percent(s->by_milter, s->total));
	sbuf_printf(sb, "  %-38s %10lu %7.1f\n", "unresolved (no deciding MTA line)",
		    unresolved, percent(unresolved, s->total));
	sbuf_printf(sb, "\n%-40s %10s %7s\n", "By verdict", "count", "%");
	for (int o = 0; o <= OUTCOME__COUNT; o++) {
		if (s->by_outcome[o] == 0)
			continue;
		sbuf_printf(sb, "  %-38s %10lu %7.1f\n",
			    o < OUTCOME__COUNT ? outcome_name((enum outcome)o) : "(unknown outcome)",
			    s->by_outcome[o], percent(s->by_outcome[o], s->total));
	}
}

static int
by_count_desc(const void *a, const void *b)
{
	const struct refusal *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static void
report_refusals(const struct summary *s, struct sbuf *sb)
{
	struct refusal top[SUMMARY_KEYS];
	char line[1024];

	if (s->nrefusals == 0)
		return;
	memcpy(top, s->refusals, s->nrefusals * sizeof top[0]);
	qsort(top, s->nrefusals, sizeof top[0], by_count_desc);
	sbuf_printf(sb, "\n%-40s %10s %7s\n", "Top refusals", "count", "%");
	for (size_t i = 0; i < s->nrefusals && i < TOP; i++) {
		struct explanation ex;
		struct sbuf lsb;
		char codes[40];
		sbuf_init(&lsb, codes, sizeof codes);
		if (top[i].code > 0)
			sbuf_printf(&lsb, "%d %s", top[i].code, top[i].enhanced);
		else
			sbuf_printf(&lsb, "%cxx %s", top[i].enhanced[0] ? top[i].enhanced[0] : '?',
				    top[i].enhanced);
		sbuf_printf(sb, "  %-38s %10lu %7.1f\n", codes, top[i].count,
			    percent(top[i].count, s->total));
		sbuf_init(&lsb, line, sizeof line);
		codes_explain(top[i].code > 0 ? top[i].code : -1, top[i].enhanced, &ex);
		codes_summary(&ex, &lsb);
		put_wrapped(sb, 6, line);
		sbuf_init(&lsb, line, sizeof line);
		sbuf_puts(&lsb, "e.g. ");
		escape_kv(&lsb, top[i].example, 64);
		put_wrapped(sb, 6, line);
	}
	if (s->other_refusals > 0)
		sbuf_printf(sb, "  %-38s %10lu\n", "(others)", s->other_refusals);
}

static long long
percentile(const struct summary *s, double p)
{
	uint64_t want = (uint64_t)((double)s->uploads * p + 0.999999), seen = 0;

	if (want == 0)
		want = 1;
	for (size_t i = 0; i < BUCKETS; i++) {
		seen += s->upload[i];
		if (seen >= want) {
			long long top = bucket_top(i);
			return top < s->upload_max ? top : s->upload_max;
		}
	}
	return s->upload_max;
}

static void
put_ms(struct sbuf *sb, const char *label, long long ms)
{
	if (ms < 10000)
		sbuf_printf(sb, "  %s %lld ms", label, ms);
	else
		sbuf_printf(sb, "  %s %.1f s", label, (double)ms / 1000.0);
}

static void
report_uploads(const struct summary *s, struct sbuf *sb)
{
	sbuf_printf(sb, "\nUpload time (upload_ms of %lu transactions)\n", s->uploads);
	if (s->uploads == 0) {
		sbuf_puts(sb, "  none measured\n");
		return;
	}
	put_ms(sb, "p50", percentile(s, 0.50));
	put_ms(sb, "p90", percentile(s, 0.90));
	put_ms(sb, "p99", percentile(s, 0.99));
	put_ms(sb, "max", s->upload_max);
	sbuf_putc(sb, '\n');
}

/* The client's name as the log gave it, escaped (a name can hold any byte), cut to size. */
static void
client_name(const char *client, char *out, size_t size)
{
	struct sbuf sb;

	sbuf_init(&sb, out, size);
	escape_kv(&sb, client, MAILLOG_CLIENT_MAX);
	if (sb.overflow && size > sizeof ESCAPE_CUT_MARK)
		memcpy(out + size - sizeof ESCAPE_CUT_MARK, ESCAPE_CUT_MARK,
		       sizeof ESCAPE_CUT_MARK);
}

static int
client_desc(const void *a, const void *b)
{
	const struct client_count *x = a, *y = b;
	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->client, y->client);
}

static void
report_clients(const struct summary *s, struct sbuf *sb)
{
	struct client_count *top;
	char name[CLIENT_COLS + 1];

	if (s->nclients == 0 || (top = malloc(s->nclients * sizeof *top)) == NULL)
		return;
	memcpy(top, s->clients, s->nclients * sizeof top[0]);
	qsort(top, s->nclients, sizeof top[0], client_desc);
	sbuf_printf(sb, "\nStalled, abandoned and timed-out uploads by client (top %d)\n", TOP);
	sbuf_printf(sb, "  %-*s %8s %9s %8s %8s\n", CLIENT_COLS - 2, "client", "stalled",
		    "abandoned", "timeout", "total");
	for (size_t i = 0; i < s->nclients && i < TOP; i++) {
		client_name(top[i].client, name, CLIENT_COLS - 1);
		sbuf_printf(sb, "  %-*s %8lu %9lu %8lu %8lu\n", CLIENT_COLS - 2, name,
			    top[i].stalled, top[i].abandoned, top[i].timed_out, top[i].total);
	}
	if (s->clients_replaced)
		put_wrapped(sb, 2, "(more clients than tracked: a total may include "
			    "counts of clients it replaced, never less than the truth)");
	free(top);
}

static int
status_desc(const void *a, const void *b)
{
	const struct status_count *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->enhanced, y->enhanced);
}

static void
report_rejects(const struct summary *s, struct sbuf *sb)
{
	struct status_count top[SUMMARY_KEYS];
	char line[1024];

	if (s->rejected_rcpts == 0 && s->nrejects == 0)
		return;
	memcpy(top, s->rejects, s->nrejects * sizeof top[0]);
	qsort(top, s->nrejects, sizeof top[0], status_desc);
	sbuf_printf(sb, "\n%-40s %10s %7s\n", "Rejected recipients by enhanced code",
		    "count", "%");
	for (size_t i = 0; i < s->nrejects; i++) {
		struct explanation ex;
		struct sbuf lsb;
		sbuf_printf(sb, "  %-38s %10lu %7.1f\n", top[i].enhanced, top[i].count,
			    percent(top[i].count, s->rejected_rcpts));
		sbuf_init(&lsb, line, sizeof line);
		if (codes_explain(-1, top[i].enhanced, &ex) || ex.enhanced[0] != '\0')
			codes_summary(&ex, &lsb);
		put_wrapped(sb, 6, line);
	}
	if (s->rejects_unlisted > 0)
		sbuf_printf(sb, "  %-38s %10lu %7.1f\n", "(not listed: \"+N more\")",
			    s->rejects_unlisted, percent(s->rejects_unlisted, s->rejected_rcpts));
	if (s->rejects_other > 0)
		sbuf_printf(sb, "  %-38s %10lu %7.1f\n", "(others)", s->rejects_other,
			    percent(s->rejects_other, s->rejected_rcpts));
}

void
summary_report(const struct summary *s, struct sbuf *sb)
{
	sbuf_puts(sb, "smtptrace-explain --verdicts: summary\n\n");
	report_verdicts(s, sb);
	report_refusals(s, sb);
	report_uploads(s, sb);
	report_clients(s, sb);
	report_rejects(s, sb);
}
