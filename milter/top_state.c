/*
 * NAME
 *	top_state - what the keys change, and the rows they select
 * DESCRIPTION
 *	See top_state.h. The sort uses qsort_r, so the comparison knows
 *	the rows without a global.
 */
#include "top_state.h"

#include <stdlib.h>
#include <string.h>

void
top_state_init(struct top_state *st)
{
	memset(st, 0, sizeof *st);
	st->sort = TOP_SORT_PHASE;
}

const char *
top_sort_name(enum top_sort sort)
{
	switch (sort) {
	case TOP_SORT_PHASE: return "time in phase";
	case TOP_SORT_CONNECTED: return "time connected";
	case TOP_SORT_CLIENT: return "client";
	case TOP_SORT__COUNT: break;
	}
	return "?";
}

static enum top_action
prompt_key(struct top_state *st, int key)
{
	if (key == TOP_KEY_ENTER || key == '\r') {
		memcpy(st->filter, st->prompt, st->prompt_len);
		st->filter[st->prompt_len] = '\0';
		st->prompting = false;
	} else if (key == TOP_KEY_ESCAPE) {
		st->prompting = false;
	} else if (key == TOP_KEY_BACKSPACE || key == '\b') {
		/* a whole UTF-8 character: continuation bytes, then its lead */
		while (st->prompt_len > 0 &&
		       ((unsigned char)st->prompt[st->prompt_len - 1] & 0xC0) == 0x80)
			st->prompt_len--;
		if (st->prompt_len > 0)
			st->prompt_len--;
	} else if (key == TOP_KEY_CTRL_U) {
		st->prompt_len = 0;
	} else if (key >= 0x20 && key <= 0xFF && key != 0x7F &&
		   st->prompt_len + 1 < sizeof st->prompt) {
		st->prompt[st->prompt_len++] = (char)key;
	} else {
		return TOP_ACT_NONE;
	}
	st->prompt[st->prompt_len] = '\0';
	return TOP_ACT_REDRAW;
}

enum top_action
top_state_key(struct top_state *st, int key)
{
	if (st->prompting)
		return prompt_key(st, key);
	if (key == 'q' || key == 'Q')
		return TOP_ACT_QUIT;
	if (st->help) {
		st->help = false;
		return TOP_ACT_REDRAW;
	}
	switch (key) {
	case 'p': case ' ':
		st->paused = !st->paused;
		break;
	case 'd':
		st->data_only = !st->data_only;
		break;
	case 's':
		st->sort = (enum top_sort)((st->sort + 1) % TOP_SORT__COUNT);
		break;
	case '?': case 'h':
		st->help = true;
		break;
	case '/':
		st->prompting = true;
		st->prompt_len = strlen(st->filter);
		memcpy(st->prompt, st->filter, st->prompt_len + 1);
		break;
	default:
		return TOP_ACT_NONE;
	}
	return TOP_ACT_REDRAW;
}

static bool
contains(const char *hay, const char *needle)
{
	if (hay == NULL)
		return false;
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return n == 0;
}

static bool
wanted(const struct top_state *st, const struct top_session *s)
{
	if (st->data_only && (s->phase == NULL ||
			      (strcmp(s->phase, "data") != 0 && strcmp(s->phase, "content") != 0)))
		return false;
	return st->filter[0] == '\0' || contains(s->client, st->filter) ||
	       contains(s->from, st->filter);
}

struct order {
	const struct top_session *rows;
	enum top_sort sort;
};

static int
cmp_str(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "");
}

static int
cmp_desc(double a, double b)
{
	return a > b ? -1 : a < b ? 1 : 0;
}

static int
compare(const void *pa, const void *pb, void *arg)
{
	const struct order *o = arg;
	const struct top_session *a = &o->rows[*(const size_t *)pa];
	const struct top_session *b = &o->rows[*(const size_t *)pb];
	int c = 0;

	if (o->sort == TOP_SORT_PHASE)
		c = cmp_desc(a->in_phase_s, b->in_phase_s);
	else if (o->sort == TOP_SORT_CONNECTED)
		c = cmp_desc(a->connected_s, b->connected_s);
	else
		c = cmp_str(a->client, b->client);
	if (c == 0)
		c = cmp_str(a->session, b->session);
	return c != 0 ? c : cmp_desc((double)a->txn, (double)b->txn);
}

size_t
top_select(const struct top_state *st, const struct top_session *rows, size_t n,
	   size_t *idx)
{
	struct order o = { rows, st->sort };
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (wanted(st, &rows[i]))
			idx[k++] = i;
	qsort_r(idx, k, sizeof *idx, compare, &o);
	return k;
}
