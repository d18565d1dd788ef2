/*
 * NAME
 *	render - write a record as a log line (key=value or JSON) or a header
 * DESCRIPTION
 *	See render.h.
 */
#include "render.h"

#include <inttypes.h>
#include <stdbool.h>

#include "escape.h"

typedef void (*escape_fn)(struct sbuf *, const char *, size_t);

/* "connect:0,helo:12,...": one token in a log line; ", " in the header, to fold. */
static void
put_timeline(const struct record *r, struct sbuf *sb, const char *sep)
{
	for (size_t i = 0; i < r->ntimeline; i++)
		sbuf_printf(sb, "%s%s:%" PRId64, i ? sep : "",
			    r->timeline[i].name, r->timeline[i].ms);
}

static void
put_value(const struct field *f, const struct record *r, struct sbuf *sb,
	  escape_fn escape, size_t max)
{
	char tl[PHASE__COUNT * 24];
	struct sbuf tsb;

	switch (f->kind) {
	case FIELD_NUM:
		sbuf_printf(sb, "%" PRId64, f->num);
		break;
	case FIELD_TEXT:
		escape(sb, f->text, max);
		break;
	case FIELD_TIMELINE:
		sbuf_init(&tsb, tl, sizeof tl);
		put_timeline(r, &tsb, escape == escape_header ? ", " : ",");
		escape(sb, tl, sizeof tl);
		break;
	}
}

void
render_kv(const struct record *r, struct sbuf *sb)
{
	render_kv_max(r, RENDER_LOG_VALUE_MAX, sb);
}

void
render_json(const struct record *r, struct sbuf *sb)
{
	render_json_max(r, RENDER_LOG_VALUE_MAX, sb);
}

void
render_kv_max(const struct record *r, size_t value_max, struct sbuf *sb)
{
	if (r->queue_id)
		escape_kv(sb, r->queue_id, SESSION_QID_MAX);
	else
		sbuf_puts(sb, "NOQUEUE");
	sbuf_putc(sb, ':');
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field *f = &r->fields[i];
		if (f->flags & FIELD_HEADER_ONLY)
			continue;
		sbuf_printf(sb, " %s=", f->key);
		put_value(f, r, sb, escape_kv, value_max);
	}
}

void
render_json_max(const struct record *r, size_t value_max, struct sbuf *sb)
{
	sbuf_puts(sb, "{\"queue_id\":");
	if (r->queue_id)
		escape_json(sb, r->queue_id, SESSION_QID_MAX);
	else
		sbuf_puts(sb, "null");
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field *f = &r->fields[i];
		if (f->flags & FIELD_HEADER_ONLY)
			continue;
		sbuf_printf(sb, ",\"%s\":", f->key);
		if (f->kind != FIELD_TIMELINE) {
			put_value(f, r, sb, escape_json, value_max);
			continue;
		}
		sbuf_putc(sb, '{');
		for (size_t t = 0; t < r->ntimeline; t++)
			sbuf_printf(sb, "%s\"%s\":%" PRId64, t ? "," : "",
				    r->timeline[t].name, r->timeline[t].ms);
		sbuf_putc(sb, '}');
	}
	sbuf_putc(sb, '}');
}

/*
 * Write an item that is too long for one line: break it before a run of
 * spaces (inside a quoted value), never between two spaces, so that each
 * continuation line holds a word and unfolding (removing the line breaks)
 * gives back the item exactly (RFC 5322 3.2.2).
 */
static void
put_breaking(struct sbuf *sb, size_t *col, const char *item, size_t len)
{
	size_t i = 0;

	while (i < len) {
		/* one unit: the spaces before a word, and the word */
		size_t j = i;
		while (j < len && item[j] == ' ')
			j++;
		while (j < len && item[j] != ' ')
			j++;
		if (i > 0 && item[i] == ' ' && *col + (j - i) > RENDER_HEADER_WIDTH) {
			sbuf_putc(sb, '\n');
			*col = 0;
		}
		sbuf_putn(sb, item + i, j - i);
		*col += j - i;
		i = j;
	}
}

/* Append one item, folding before it when it would pass the width. */
static void
put_item(struct sbuf *sb, size_t *col, const char *item, size_t len)
{
	if (*col + 2 + len > RENDER_HEADER_WIDTH) {
		sbuf_puts(sb, ";\n\t");
		*col = 8;	/* a tab, as a terminal shows it */
	} else {
		sbuf_puts(sb, "; ");
		*col += 2;
	}
	put_breaking(sb, col, item, len);
}

void
render_header(const struct record *r, const char *authserv_id,
	      size_t name_len, bool with_explain, struct sbuf *sb)
{
	/* 4 bytes of output per input byte at worst, plus the key */
	char item[RENDER_HEADER_VALUE_MAX * 4 + 64];
	struct sbuf isb;
	size_t col = name_len + 2;	/* "Name: " */

	sbuf_init(&isb, item, sizeof item);
	escape_header(&isb, authserv_id, RENDER_HEADER_VALUE_MAX);
	sbuf_putn(sb, item, isb.len);
	col += isb.len;
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field *f = &r->fields[i];
		if ((f->flags & FIELD_LOG_ONLY) ||
		    ((f->flags & FIELD_EXPLAIN) && !with_explain))
			continue;
		sbuf_init(&isb, item, sizeof item);
		sbuf_printf(&isb, "%s=", f->key);
		put_value(f, r, &isb, escape_header, RENDER_HEADER_VALUE_MAX);
		put_item(sb, &col, item, isb.len);
	}
}

void
render_header_short(const struct record *r, const char *authserv_id,
		    struct sbuf *sb)
{
	static const char *const keys[] = { "session", "queue_id", "outcome" };

	escape_header(sb, authserv_id, RENDER_HEADER_VALUE_MAX);
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		const struct field *f = record_get(r, keys[k]);
		if (f == NULL || f->kind != FIELD_TEXT)
			continue;
		sbuf_printf(sb, "; %s=", f->key);
		escape_header(sb, f->text, SESSION_QID_MAX);
	}
	sbuf_puts(sb, ";\n\tcut=yes");
}
