/*
 * NAME
 *	top_layout - columns, durations, bars and colours of smtptrace-top
 * DESCRIPTION
 *	See top_layout.h.
 */
#include "top_layout.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define COL_MAX		200	/* no column wider, however wide the screen */
#define COL_MIN		4

static int
clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void
top_layout(int width, struct top_cols *c)
{
	memset(c, 0, sizeof *c);
	c->width = width;
	c->phase = 7;
	c->in_phase = 8;
	c->connected = width >= 100 ? 8 : 0;
	c->bar = width >= 140 ? 22 : width >= 120 ? 17 : 12;
	int fixed = 2 + 3 + (c->phase + 1) + (c->in_phase + 1) +
		    (c->connected ? c->connected + 1 : 0) + c->bar;
	int room = width - fixed;
	c->client = clamp(room * 45 / 100, COL_MIN, COL_MAX);
	c->helo = clamp(room * 20 / 100, COL_MIN, COL_MAX);
	c->from = clamp(room - c->client - c->helo, COL_MIN, COL_MAX);
	c->bar_at = 2 + c->client + 1 + c->helo + 1 + c->from + 1 + c->phase + 1 +
		    c->in_phase + 1 + (c->connected ? c->connected + 1 : 0);

	c->ago = 6;
	c->outcome = 19;	/* "aborted-before-data", "no-valid-recipients" */
	c->reply = 9;		/* "421 4.4.2" */
	c->upload = 7;
	c->queue_id = width >= 110 ? 12 : 0;
	fixed = c->ago + 1 + c->outcome + 1 + c->reply + 1 + c->upload + 1 +
		(c->queue_id ? c->queue_id + 1 : 0) + 1;
	room = width - fixed;
	c->r_client = clamp(room * 55 / 100, COL_MIN, COL_MAX);
	c->r_from = clamp(room - c->r_client, COL_MIN, COL_MAX);
	c->outcome_at = c->ago + 1;
}

void
top_panes(int lines, size_t sessions, size_t recent, struct top_panes *p)
{
	int room = lines - 2;		/* the two headings */
	int want_recent = recent > 0 ? (int)(recent < 1000 ? recent : 1000) : 1;
	int want_table = sessions > 0 ? (int)(sessions < 100000 ? sessions : 100000) : 1;

	memset(p, 0, sizeof *p);
	if (room <= 0)
		return;
	int floor = room / 3 > 3 ? room / 3 : 3;	/* the recent pane's share */
	if (floor > want_recent)
		floor = want_recent;
	if (floor > room)
		floor = room;
	p->table_rows = room - floor;
	if (p->table_rows > want_table)
		p->table_rows = want_table;
	p->recent_rows = room - p->table_rows;
	if (p->recent_rows > want_recent && p->table_rows < want_table)
		p->recent_rows = want_recent;
}

void
top_duration(struct sbuf *sb, double s)
{
	if (isnan(s) || s < 0) {
		sbuf_putc(sb, '-');
		return;
	}
	if (s > 1e12)			/* and +Inf: no conversion out of range */
		s = 1e12;
	long long whole = (long long)(s + 0.5);
	if (s < 99.95)
		sbuf_printf(sb, "%.1fs", s);
	else if (s < 999.5)
		sbuf_printf(sb, "%llds", whole);
	else if (whole < 6000)
		sbuf_printf(sb, "%lldm%02llds", whole / 60, whole % 60);
	else if (whole < 360000)
		sbuf_printf(sb, "%lldh%02lldm", whole / 3600, whole / 60 % 60);
	else
		sbuf_printf(sb, "%lldd%02lldh", whole / 86400, whole / 3600 % 24);
}

void
top_bar(struct sbuf *sb, double seconds, double scale, int width)
{
	int inside = width - 2;

	if (width < 2)
		return;
	double part = scale > 0 && seconds > 0 ? seconds / scale : 0;
	int filled = part >= 1 ? inside : (int)(part * inside + 0.5);
	sbuf_putc(sb, '[');
	for (int i = 0; i < inside; i++)
		sbuf_putc(sb, i < filled ? '#' : '.');
	sbuf_putc(sb, ']');
}

static bool
prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

enum top_colour
top_outcome_colour(const char *o)
{
	if (o == NULL)
		return TOP_COLOUR_NONE;
	if (strcmp(o, "accepted") == 0)
		return TOP_COLOUR_GREEN;
	if (prefix(o, "refused") || strcmp(o, "discarded") == 0)
		return TOP_COLOUR_YELLOW;
	if (prefix(o, "ended") || prefix(o, "abandoned") || prefix(o, "timeout"))
		return TOP_COLOUR_RED;
	return TOP_COLOUR_NONE;
}
