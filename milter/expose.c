/*
 * NAME
 *	expose - what the HTTP listener and the text file serve, as text
 * DESCRIPTION
 *	See expose.h. Which threads: the HTTP and text-file threads.
 */
#include "expose.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>

#include "escape.h"
#include "metrics.h"
#include "sbuf.h"

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

struct rows {
	struct stall_view *v;
	size_t n;
	size_t in_data;		/* all of them, listed or not */
	int64_t now_ms;
};


/* Room one row can take at most (every value escaped at its cap), and the tail. */
#define ROW_MAX		8192
#define ROWS_TAIL	128

static void
render_row(struct sbuf *sb, const struct stall_view *v, bool first)
{
	sbuf_puts(sb, first ? "\n{\"session\":" : ",\n{\"session\":");
	escape_json(sb, v->session, sizeof v->session);
	sbuf_printf(sb, ",\"txn\":%u,\"queue_id\":", v->txn);
	if (v->queue_id[0] != '\0')
		escape_json(sb, v->queue_id, sizeof v->queue_id);
	else
		sbuf_puts(sb, "null");
	sbuf_puts(sb, ",\"client\":");
	escape_json(sb, v->client, sizeof v->client);
	sbuf_puts(sb, ",\"helo\":");
	escape_json(sb, v->helo, sizeof v->helo);
	sbuf_puts(sb, ",\"from\":");
	escape_json(sb, v->sender, sizeof v->sender);
	sbuf_printf(sb, ",\"rcpt\":%u,\"phase\":\"data\",\"seconds_in_phase\":%.3f,"
		    "\"stalled\":%s,\"warnings\":%u}",
		    v->rcpt, (double)v->in_data_ms / 1000.0,
		    v->warnings > 0 ? "true" : "false", v->warnings);
}

/*
 * The rows that fit: in a buffer smaller than EXPOSE_MAX_SIZE a row that
 * might not fit makes the render overflow (render_alloc grows and retries);
 * at EXPOSE_MAX_SIZE the list stops there and says it was truncated.
 */
static void
render_rows(struct sbuf *sb, void *arg)
{
	const struct rows *rows = arg;
	size_t shown = 0;

	sbuf_printf(sb, "{\"now_ms\":%" PRId64 ",\"in_data\":%zu,\"transactions\":[",
		    rows->now_ms, rows->in_data);
	for (; shown < rows->n; shown++) {
		if (sb->cap - sb->len < ROW_MAX + ROWS_TAIL) {
			if (sb->cap < EXPOSE_MAX_SIZE)
				sb->overflow = true;
			break;
		}
		render_row(sb, &rows->v[shown], shown == 0);
	}
	sbuf_printf(sb, "],\"count\":%zu,\"truncated\":%s}\n", shown,
		    shown < rows->in_data ? "true" : "false");
}

char *
expose_transactions(struct registry *reg, int64_t now_ms, size_t limit, size_t *len)
{
	size_t stalled;
	struct rows rows = { .now_ms = now_ms };

	if (limit == 0)
		limit = EXPOSE_ROWS_DEFAULT;
	if (limit > EXPOSE_ROWS_MAX)
		limit = EXPOSE_ROWS_MAX;
	registry_counts(reg, &rows.in_data, &stalled, NULL);
	/* the registry lists the longest in DATA first: copy only what is shown */
	size_t room = rows.in_data < limit ? rows.in_data + 16 : limit;
	rows.v = malloc((room ? room : 1) * sizeof *rows.v);
	if (rows.v == NULL)
		return NULL;
	rows.n = registry_snapshot(reg, now_ms, rows.v, room);
	if (rows.n > limit)
		rows.n = limit;
	if (rows.in_data < rows.n)
		rows.in_data = rows.n;
	char *out = render_alloc(render_rows, &rows, 1024 + rows.n * 700, len);
	free(rows.v);
	return out;
}
