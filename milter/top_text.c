/*
 * NAME
 *	top_text - smtptrace-top's lines as text, and the --once snapshot
 * DESCRIPTION
 *	See top_text.h. A line is built in a scratch buffer from pieces
 *	already made safe (top_fit), then cut to the width once.
 */
#include "top_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top_str.h"

#define DEFAULT_SCALE	30.0

/* Appends the scratch line to sb, cut to width columns. */
static void
finish(struct sbuf *sb, const struct sbuf *scratch, int width)
{
	top_fit(sb, scratch->buf, width < TOP_WIDTH_MAX ? width : TOP_WIDTH_MAX, 0);
}

/* A value in a column: fitted and padded, then one space. */
static void
cell(struct sbuf *sb, const char *s, int cols, int flags)
{
	top_fit(sb, s, cols, flags | TOP_PAD);
	sbuf_putc(sb, ' ');
}

/*
 * A client "name[address]:port" in cols: when it does not fit, the port
 * goes first, then the name is cut before the address ("mail.exa...[192.0.2.1]").
 */
static void
client_cell(struct sbuf *sb, const char *client, int cols, int flags)
{
	char name[TOP_STR_MAX + 1], addr[TOP_STR_MAX + 1];
	const char *open = client != NULL ? strrchr(client, '[') : NULL;
	const char *close = open != NULL ? strchr(open, ']') : NULL;

	if (close == NULL || top_width(client, flags) <= cols) {
		cell(sb, client, cols, flags);
		return;
	}
	size_t name_len = (size_t)(open - client), addr_len = (size_t)(close + 1 - open);
	if (name_len >= sizeof name || addr_len >= sizeof addr) {
		cell(sb, client, cols, flags);
		return;
	}
	memcpy(name, client, name_len);
	name[name_len] = '\0';
	memcpy(addr, open, addr_len);
	addr[addr_len] = '\0';
	int addr_cols = top_width(addr, flags);
	if (addr_cols + 4 > cols) {
		cell(sb, client, cols, flags);
		return;
	}
	int used = top_fit(sb, name, cols - addr_cols, flags);
	used += top_fit(sb, addr, addr_cols, flags);
	for (; used < cols; used++)
		sbuf_putc(sb, ' ');
	sbuf_putc(sb, ' ');
}

/* A duration right-aligned in cols, then one space. */
static void
duration_cell(struct sbuf *sb, double seconds, int cols)
{
	char buf[32];
	struct sbuf d;

	sbuf_init(&d, buf, sizeof buf);
	top_duration(&d, seconds);
	for (int pad = cols - (int)d.len; pad > 0; pad--)
		sbuf_putc(sb, ' ');
	top_fit(sb, buf, cols, 0);
	sbuf_putc(sb, ' ');
}

/* Short durations in milliseconds, the rest as top_duration(). */
static void
quantile(struct sbuf *sb, double seconds)
{
	if (!isfinite(seconds) || seconds < 0)
		sbuf_putc(sb, '-');
	else if (seconds < 1)
		sbuf_printf(sb, "%.0fms", seconds * 1000);
	else
		top_duration(sb, seconds);
}

double
top_scale(const struct top_scene *sc)
{
	if (sc->txns != NULL && sc->txns->stall_warn_after_s > 0)
		return (double)sc->txns->stall_warn_after_s;
	return DEFAULT_SCALE;
}

void
top_line_title(struct sbuf *sb, const struct top_scene *sc, int width)
{
	char buf[TOP_LINE_MAX];
	struct sbuf t;
	const char *version = NULL;

	if (sc->txns != NULL && sc->txns->version != NULL)
		version = sc->txns->version;
	else if (sc->metrics != NULL && sc->metrics->version[0] != '\0')
		version = sc->metrics->version;
	sbuf_init(&t, buf, sizeof buf);
	sbuf_puts(&t, "smtptrace-top  ");
	top_fit(&t, sc->url, 200, sc->flags);
	sbuf_puts(&t, "  milter ");
	top_fit(&t, version != NULL ? version : "?", 40, sc->flags);
	if (sc->txns != NULL && sc->txns->uptime_s >= 0) {
		long long up = sc->txns->uptime_s;
		sbuf_puts(&t, "  up ");
		if (up >= 86400)
			sbuf_printf(&t, "%lldd ", up / 86400);
		sbuf_printf(&t, "%02lld:%02lld:%02lld", up / 3600 % 24, up / 60 % 60, up % 60);
	}
	sbuf_printf(&t, "  every %gs", sc->interval_s);
	finish(sb, &t, width);
}

/* Prefer the /transactions snapshot; else /metrics; else count the rows. */
static long long
count_of(long long from_txns, double from_metrics, long long counted)
{
	if (from_txns >= 0)
		return from_txns;
	if (!isnan(from_metrics) && from_metrics >= 0)
		return from_metrics < 1e15 ? (long long)from_metrics : 1000000000000000LL;
	return counted;
}

void
top_line_counts(struct sbuf *sb, const struct top_scene *sc, int width)
{
	char buf[TOP_LINE_MAX];
	struct sbuf t;
	const struct top_transactions *x = sc->txns;
	const struct top_metrics *m = sc->metrics;
	long long rows = 0, data = 0, stalled = 0;

	for (size_t i = 0; x != NULL && i < x->n; i++) {
		const char *ph = x->rows[i].phase;
		rows++;
		data += ph != NULL && (strcmp(ph, "data") == 0 || strcmp(ph, "content") == 0);
		stalled += x->rows[i].stalled;
	}
	sbuf_init(&t, buf, sizeof buf);
	sbuf_printf(&t, "sessions %lld, in DATA %lld, stalled %lld",
		    count_of(x ? x->open : -1, m ? m->open : NAN, rows),
		    count_of(x ? x->in_data : -1, m ? m->in_data : NAN, data),
		    count_of(x ? x->stalled : -1, m ? m->stalled : NAN, stalled));
	const struct top_rates *r = sc->rates;
	if (r == NULL || !r->valid) {
		sbuf_puts(&t, "   uploads: after a second sample");
	} else if (!(r->uploads > 0)) {
		sbuf_printf(&t, "   no uploads in %.1fs", r->elapsed_s);
	} else {
		sbuf_printf(&t, "   %.0f upload%s in %.1fs: p50 ", r->uploads,
			    r->uploads == 1 ? "" : "s", r->elapsed_s);
		quantile(&t, r->p50);
		sbuf_puts(&t, " p95 ");
		quantile(&t, r->p95);
	}
	finish(sb, &t, width);
}

void
top_line_rates(struct sbuf *sb, const struct top_scene *sc, int width)
{
	char buf[TOP_LINE_MAX];
	struct sbuf t;
	const struct top_rates *r = sc->rates;
	int shown = 0;

	sbuf_init(&t, buf, sizeof buf);
	if (r == NULL || !r->valid) {
		sbuf_puts(&t, "ended per second: after a second sample");
		finish(sb, &t, width);
		return;
	}
	sbuf_printf(&t, "ended per second over %.1fs: %.2f", r->elapsed_s, r->total_per_s);
	for (size_t i = 0; i < r->n; i++) {
		if (!(r->rates[i].per_s > 0))
			continue;
		sbuf_puts(&t, shown++ ? ", " : " (");
		top_fit(&t, r->rates[i].name, TOP_LABEL_MAX, sc->flags);
		sbuf_printf(&t, " %.2f", r->rates[i].per_s);
	}
	if (shown)
		sbuf_putc(&t, ')');
	finish(sb, &t, width);
}

void
top_table_head(struct sbuf *sb, const struct top_scene *sc, const struct top_cols *c)
{
	char buf[TOP_LINE_MAX], bar[64];
	struct sbuf t;

	sbuf_init(&t, buf, sizeof buf);
	sbuf_puts(&t, "  ");
	cell(&t, "CLIENT", c->client, 0);
	cell(&t, "HELO", c->helo, 0);
	cell(&t, "FROM", c->from, 0);
	cell(&t, "PHASE", c->phase, 0);
	cell(&t, "IN PHASE", c->in_phase, 0);
	if (c->connected)
		cell(&t, "    CONN", c->connected, 0);
	if (snprintf(bar, sizeof bar, "0-%gs", top_scale(sc)) >= (int)sizeof bar)
		bar[0] = '\0';
	top_fit(&t, bar, c->bar, 0);
	finish(sb, &t, c->width);
}

void
top_table_row(struct sbuf *sb, const struct top_scene *sc, const struct top_session *s,
	      const struct top_cols *c)
{
	char buf[TOP_LINE_MAX];
	struct sbuf t;

	sbuf_init(&t, buf, sizeof buf);
	sbuf_puts(&t, s->stalled ? "! " : "  ");
	client_cell(&t, s->client, c->client, sc->flags);
	cell(&t, s->helo, c->helo, sc->flags);
	cell(&t, s->from, c->from, sc->flags);
	cell(&t, s->phase, c->phase, sc->flags);
	duration_cell(&t, s->in_phase_s, c->in_phase);
	if (c->connected)
		duration_cell(&t, s->connected_s, c->connected);
	top_bar(&t, s->in_phase_s, top_scale(sc), c->bar);
	finish(sb, &t, c->width);
}

void
top_recent_head(struct sbuf *sb, const struct top_cols *c)
{
	char buf[TOP_LINE_MAX];
	struct sbuf t;

	sbuf_init(&t, buf, sizeof buf);
	cell(&t, "   AGO", c->ago, 0);
	cell(&t, "ENDED AS", c->outcome, 0);
	cell(&t, "REPLY", c->reply, 0);
	cell(&t, " UPLOAD", c->upload, 0);
	if (c->queue_id)
		cell(&t, "QUEUE ID", c->queue_id, 0);
	cell(&t, "CLIENT", c->r_client, 0);
	top_fit(&t, "FROM", c->r_from, 0);
	finish(sb, &t, c->width);
}

void
top_recent_row(struct sbuf *sb, const struct top_scene *sc, const struct top_ending *e,
	       const struct top_cols *c)
{
	char buf[TOP_LINE_MAX];
	struct sbuf t;

	sbuf_init(&t, buf, sizeof buf);
	duration_cell(&t, e->ended_ms_ago < 0 ? -1 : (double)e->ended_ms_ago / 1000, c->ago);
	cell(&t, e->outcome, c->outcome, sc->flags);
	cell(&t, e->reply, c->reply, sc->flags);
	duration_cell(&t, e->upload_ms < 0 ? -1 : (double)e->upload_ms / 1000, c->upload);
	if (c->queue_id)
		cell(&t, e->queue_id, c->queue_id, sc->flags);
	client_cell(&t, e->client, c->r_client, sc->flags);
	top_fit(&t, e->from, c->r_from, sc->flags);
	finish(sb, &t, c->width);
}

void
top_line_status(struct sbuf *sb, const struct top_state *st, const char *error,
		const char *updated, double interval_s, int width, int flags)
{
	char buf[TOP_LINE_MAX];
	struct sbuf t;

	sbuf_init(&t, buf, sizeof buf);
	if (st->prompting) {
		sbuf_puts(&t, "filter (client or sender, Enter applies, Esc cancels): ");
		top_fit(&t, st->prompt, TOP_FILTER_MAX, flags);
		finish(sb, &t, width);
		return;
	}
	if (error != NULL && error[0] != '\0') {
		sbuf_printf(&t, "retrying every %gs: ", interval_s);
		top_fit(&t, error, 400, TOP_ASCII);
	} else if (updated != NULL && updated[0] != '\0') {
		sbuf_puts(&t, "updated ");
		top_fit(&t, updated, 40, 0);
	} else {
		sbuf_puts(&t, "connecting");
	}
	if (st->paused)
		sbuf_puts(&t, "  [PAUSED]");
	if (st->data_only)
		sbuf_puts(&t, "  [DATA only]");
	if (st->filter[0] != '\0') {
		sbuf_puts(&t, "  [filter: ");
		top_fit(&t, st->filter, 40, flags);
		sbuf_putc(&t, ']');
	}
	sbuf_printf(&t, "  sort: %s  ? help  q quit", top_sort_name(st->sort));
	finish(sb, &t, width);
}

/* Builds one line with call into sb, cuts it to width and hands it to emit. */
#define EMIT(call) do { \
	char cut_[TOP_LINE_MAX]; \
	struct sbuf out_; \
	sbuf_init(&sb, line, sizeof line); \
	call; \
	sbuf_init(&out_, cut_, sizeof cut_); \
	finish(&out_, &sb, width); \
	emit(arg, cut_); \
} while (0)

static void
once_sessions(const struct top_scene *sc, const struct top_cols *c,
	      void (*emit)(void *, const char *), void *arg)
{
	int width = c->width;
	char line[TOP_LINE_MAX];
	struct sbuf sb;
	const struct top_transactions *x = sc->txns;
	struct top_state st;
	size_t *idx = x->n > 0 ? malloc(x->n * sizeof *idx) : NULL;
	size_t n = 0;

	top_state_init(&st);
	if (idx != NULL)
		n = top_select(&st, x->rows, x->n, idx);
	EMIT(sbuf_printf(&sb, "SESSIONS IN FLIGHT: %zu%s, longest in phase first; "
			 "! = stalled (past %gs)", n,
			 x->truncated ? " (the milter cut its list)" : "", top_scale(sc)));
	EMIT(top_table_head(&sb, sc, c));
	if (x->n > 0 && idx == NULL)
		EMIT(sbuf_puts(&sb, "  (out of memory)"));
	else if (n == 0)
		EMIT(sbuf_puts(&sb, "  (none)"));
	for (size_t i = 0; i < n; i++)
		EMIT(top_table_row(&sb, sc, &x->rows[idx[i]], c));
	free(idx);
}

void
top_text_once(const struct top_scene *sc, int width, void (*emit)(void *arg, const char *line),
	      void *arg)
{
	char line[TOP_LINE_MAX];
	struct sbuf sb;
	struct top_cols c;

	width = width < TOP_WIDTH_MAX ? width : TOP_WIDTH_MAX;
	top_layout(width, &c);
	EMIT(top_line_title(&sb, sc, width));
	EMIT(top_line_counts(&sb, sc, width));
	EMIT(top_line_rates(&sb, sc, width));
	EMIT((void)0);
	if (sc->txns != NULL)
		once_sessions(sc, &c, emit, arg);
	EMIT((void)0);
	EMIT(sbuf_puts(&sb, "RECENT ENDINGS, newest first"));
	EMIT(top_recent_head(&sb, &c));
	if (sc->recent == NULL)
		EMIT(sbuf_puts(&sb, "  (this milter serves no /recent)"));
	else if (sc->recent->n == 0)
		EMIT(sbuf_puts(&sb, "  (none yet)"));
	for (size_t i = 0; sc->recent != NULL && i < sc->recent->n; i++)
		EMIT(top_recent_row(&sb, sc, &sc->recent->rows[i], &c));
}
