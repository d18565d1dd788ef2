/*
 * NAME
 *	expose - what the HTTP listener and the text file serve, as text
 * DESCRIPTION
 *	See expose.h. Which threads: the HTTP and text-file threads. A
 *	listing copies the rows first (live_snapshot, live_recent: they never
 *	hold up a callback), then sorts and renders its own copy.
 */
#include "expose.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "live.h"
#include "metrics.h"
#include "sbuf.h"
#include "version.h"

#define EXPOSE_FIRST_SIZE	(64 * 1024)

typedef void (*render_fn)(struct sbuf *sb, void *arg);

/* Render into a buffer that grows until the output fits. */
static char *
render_alloc(render_fn render, void *arg, size_t first, size_t *len)
{
	size_t size = first < EXPOSE_MAX_SIZE ? first : EXPOSE_MAX_SIZE;

	for (;; size = size * 4 < EXPOSE_MAX_SIZE ? size * 4 : EXPOSE_MAX_SIZE) {
		char *buf = malloc(size);
		struct sbuf sb;

		if (buf == NULL)
			return NULL;
		sbuf_init(&sb, buf, size);
		render(&sb, arg);
		if (!sb.overflow) {
			*len = sb.len;
			return buf;
		}
		free(buf);
		if (size == EXPOSE_MAX_SIZE)
			return NULL;
	}
}

static void
render_metrics(struct sbuf *sb, void *arg)
{
	metrics_render(sb, arg);
}

char *
expose_metrics(struct registry *reg, size_t *len)
{
	return render_alloc(render_metrics, reg, EXPOSE_FIRST_SIZE, len);
}

/* Room one row can take at most (every value escaped at its cap), and the tail. */
#define ROW_MAX		8192
#define ROWS_TAIL	128

static size_t
clamp_limit(size_t limit)
{
	if (limit == 0)
		return EXPOSE_ROWS_DEFAULT;
	return limit < EXPOSE_ROWS_MAX ? limit : EXPOSE_ROWS_MAX;
}

/* Is there room for one more row? If not: retry bigger, or stop at the cap. */
static bool
row_fits(struct sbuf *sb)
{
	if (sb->cap - sb->len >= ROW_MAX + ROWS_TAIL)
		return true;
	if (sb->cap < EXPOSE_MAX_SIZE)
		sb->overflow = true;	/* render_alloc grows the buffer and retries */
	return false;
}

static void
put_text(struct sbuf *sb, const char *key, const char *text, size_t max)
{
	sbuf_puts(sb, key);
	escape_json(sb, text, max);
}

/* A string, or null when empty. */
static void
put_text_or_null(struct sbuf *sb, const char *key, const char *text, size_t max)
{
	if (text[0] == '\0') {
		sbuf_puts(sb, key);
		sbuf_puts(sb, "null");
	} else {
		put_text(sb, key, text, max);
	}
}

static double
seconds_since(int64_t now_ms, int64_t at_ms)
{
	return now_ms > at_ms ? (double)(now_ms - at_ms) / 1000.0 : 0.0;
}

/* ---- /transactions -------------------------------------------------------- */

struct sessions {
	struct live_row   *rows;
	struct live_row  **order;	/* rows sorted; the first n are listed */
	size_t             n;
	struct live_counts counts;
	int64_t            now_ms, uptime_s, warn_after_s;
};

static void
render_session(struct sbuf *sb, const struct live_row *r, int64_t now_ms, bool first)
{
	put_text(sb, first ? "\n{\"session\":" : ",\n{\"session\":", r->session,
		 sizeof r->session);
	sbuf_printf(sb, ",\"txn\":%u,\"phase\":\"%s\",\"seconds_in_phase\":%.3f,"
		    "\"seconds_connected\":%.3f", r->txn,
		    live_phase_name((enum live_phase)r->phase),
		    seconds_since(now_ms, r->since), seconds_since(now_ms, r->connect_at));
	put_text(sb, ",\"client\":", r->client, sizeof r->client);
	put_text_or_null(sb, ",\"helo\":", r->helo, sizeof r->helo);
	if (r->phase >= LIVE_MAIL)
		put_text(sb, ",\"from\":", r->sender, sizeof r->sender);
	else
		sbuf_puts(sb, ",\"from\":null");
	sbuf_printf(sb, ",\"rcpt\":%u,\"rcpt_rejected\":%u", r->rcpt, r->rcpt_rejected);
	put_text_or_null(sb, ",\"queue_id\":", r->queue_id, sizeof r->queue_id);
	put_text_or_null(sb, ",\"tls\":", r->tls, sizeof r->tls);
	sbuf_printf(sb, ",\"stalled\":%s,\"warnings\":%u}",
		    r->phase == LIVE_DATA && r->warnings > 0 ? "true" : "false", r->warnings);
}

static void
render_sessions(struct sbuf *sb, void *arg)
{
	const struct sessions *ss = arg;
	size_t shown = 0;

	sbuf_printf(sb, "{\"now_ms\":%" PRId64 ",\"version\":\"%s\",\"uptime_s\":%" PRId64
		    ",\"stall_warn_after_s\":%" PRId64 ",\"open\":%zu,\"in_data\":%zu,"
		    "\"stalled\":%zu,\"transactions\":[",
		    ss->now_ms, SMTPTRACE_VERSION, ss->uptime_s, ss->warn_after_s,
		    ss->counts.open, ss->counts.in_data, ss->counts.stalled);
	for (; shown < ss->n && row_fits(sb); shown++)
		render_session(sb, ss->order[shown], ss->now_ms, shown == 0);
	sbuf_printf(sb, "],\"count\":%zu,\"truncated\":%s}\n", shown,
		    shown < ss->counts.matched ? "true" : "false");
}

/* The longest in its phase first; then the longest connected; then by id. */
static int
cmp_rows(const void *a, const void *b)
{
	const struct live_row *x = *(struct live_row *const *)a;
	const struct live_row *y = *(struct live_row *const *)b;

	if (x->since != y->since)
		return x->since < y->since ? -1 : 1;
	if (x->connect_at != y->connect_at)
		return x->connect_at < y->connect_at ? -1 : 1;
	return strcmp(x->session, y->session);
}

char *
expose_sessions(struct registry *reg, const struct expose_query *q, int64_t now_ms,
		size_t *len)
{
	struct live *lv = &reg->live;
	struct sessions ss = { .now_ms = now_ms };
	int64_t warn_after_ms, repeat_ms;
	size_t limit = clamp_limit(q->limit);
	size_t room = live_rows_max(lv);

	registry_timing(reg, &warn_after_ms, &repeat_ms);
	ss.warn_after_s = warn_after_ms / 1000;
	ss.uptime_s = now_ms > lv->started_ms ? (now_ms - lv->started_ms) / 1000 : 0;
	ss.rows = malloc((room ? room : 1) * sizeof *ss.rows);
	ss.order = malloc((room ? room : 1) * sizeof *ss.order);
	if (ss.rows == NULL || ss.order == NULL) {
		free(ss.rows);
		free(ss.order);
		return NULL;
	}
	size_t n = live_snapshot(lv, q->phase_mask ? q->phase_mask : LIVE_ALL_PHASES,
				 ss.rows, room, &ss.counts);
	for (size_t i = 0; i < n; i++)
		ss.order[i] = &ss.rows[i];
	qsort(ss.order, n, sizeof *ss.order, cmp_rows);
	ss.n = n < limit ? n : limit;
	char *out = render_alloc(render_sessions, &ss, 1024 + ss.n * 700, len);
	free(ss.order);
	free(ss.rows);
	return out;
}

char *
expose_transactions(struct registry *reg, int64_t now_ms, size_t limit, size_t *len)
{
	struct expose_query q = { .phase_mask = LIVE_PHASE_BIT(LIVE_DATA), .limit = limit };

	return expose_sessions(reg, &q, now_ms, len);
}

/* ---- /recent ---------------------------------------------------------------- */

struct recent {
	struct live_ended *e;
	size_t             n;
	size_t             size;
	int64_t            now_ms, wall_ms;
};

static void
put_ms_or_null(struct sbuf *sb, const char *key, int64_t ms)
{
	if (ms >= 0)
		sbuf_printf(sb, "%s%" PRId64, key, ms);
	else
		sbuf_printf(sb, "%snull", key);
}

/* "2026-12-01T22:21:29Z" of a wall-clock time in ms. */
static void
put_utc(struct sbuf *sb, int64_t wall_ms)
{
	time_t t = (time_t)(wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000);
	struct tm tm;
	char text[32];

	if (gmtime_r(&t, &tm) == NULL || strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		sbuf_puts(sb, "null");
	else
		sbuf_printf(sb, "\"%s\"", text);
}

static void
render_ended(struct sbuf *sb, const struct live_ended *e, int64_t now_ms,
	     int64_t wall_ms, bool first)
{
	int64_t ago = now_ms > e->ended_at ? now_ms - e->ended_at : 0;

	put_text(sb, first ? "\n{\"session\":" : ",\n{\"session\":", e->session,
		 sizeof e->session);
	sbuf_printf(sb, ",\"txn\":%u", e->txn);
	put_text_or_null(sb, ",\"queue_id\":", e->queue_id, sizeof e->queue_id);
	put_text(sb, ",\"client\":", e->client, sizeof e->client);
	put_text_or_null(sb, ",\"helo\":", e->helo, sizeof e->helo);
	put_text(sb, ",\"from\":", e->sender, sizeof e->sender);
	put_text(sb, ",\"outcome\":", e->outcome, sizeof e->outcome);
	put_text_or_null(sb, ",\"reply\":", e->reply, sizeof e->reply);
	put_ms_or_null(sb, ",\"upload_ms\":", e->upload_ms);
	put_ms_or_null(sb, ",\"duration_ms\":", e->duration_ms);
	sbuf_printf(sb, ",\"ended_ms_ago\":%" PRId64 ",\"end_time\":", ago);
	put_utc(sb, wall_ms - ago);
	sbuf_putc(sb, '}');
}

static void
render_recent(struct sbuf *sb, void *arg)
{
	const struct recent *rc = arg;
	size_t shown = 0;

	sbuf_printf(sb, "{\"now_ms\":%" PRId64 ",\"size\":%zu,\"recent\":[", rc->now_ms, rc->size);
	for (; shown < rc->n && row_fits(sb); shown++)
		render_ended(sb, &rc->e[shown], rc->now_ms, rc->wall_ms, shown == 0);
	sbuf_printf(sb, "],\"count\":%zu}\n", shown);
}

char *
expose_recent(struct registry *reg, size_t limit, int64_t now_ms, int64_t wall_ms,
	      size_t *len)
{
	struct recent rc = { .now_ms = now_ms, .wall_ms = wall_ms };

	rc.size = live_recent_size(&reg->live);
	limit = clamp_limit(limit);
	if (limit > rc.size)
		limit = rc.size;
	rc.e = malloc((limit ? limit : 1) * sizeof *rc.e);
	if (rc.e == NULL)
		return NULL;
	rc.n = live_recent(&reg->live, rc.e, limit);
	char *out = render_alloc(render_recent, &rc, 1024 + rc.n * 800, len);
	free(rc.e);
	return out;
}
