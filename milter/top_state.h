/*
 * NAME
 *	top_state - what the keys change, and the rows they select
 * SYNOPSIS
 *	#include "top_state.h"
 *
 *	void top_state_init(struct top_state *st);
 *	enum top_action top_state_key(struct top_state *st, int key);
 *	size_t top_select(const struct top_state *st,
 *	    const struct top_session *rows, size_t n, size_t *idx);
 *	const char *top_sort_name(enum top_sort sort);
 * DESCRIPTION
 *	top_state_key() applies one key (a byte, or TOP_KEY_*): q quits
 *	(from anywhere but the filter prompt), p pauses, d shows only
 *	sessions in DATA (phase data or content), s cycles the sort order
 *	(time in phase, time connected, client), ? shows the help (any key
 *	closes it), / opens the filter prompt. In the prompt, printable bytes
 *	are added, TOP_KEY_BACKSPACE removes the last character, Ctrl-U
 *	clears, TOP_KEY_ENTER applies it (empty: no filter) and
 *	TOP_KEY_ESCAPE leaves it unchanged.
 *
 *	top_select() writes into idx (room for n) the indices of the rows to
 *	show, in order, and returns how many: the filter is a substring of
 *	the client or the sender, ASCII case ignored. Ties go by session id,
 *	so the order is stable from one poll to the next.
 *
 *	Pure.
 */
#ifndef SMTPTRACE_TOP_STATE_H
#define SMTPTRACE_TOP_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "top_model.h"

#define TOP_FILTER_MAX	128

#define TOP_KEY_ENTER		'\n'
#define TOP_KEY_ESCAPE		27
#define TOP_KEY_BACKSPACE	127
#define TOP_KEY_CTRL_U		21

enum top_sort { TOP_SORT_PHASE, TOP_SORT_CONNECTED, TOP_SORT_CLIENT, TOP_SORT__COUNT };

enum top_action { TOP_ACT_NONE, TOP_ACT_REDRAW, TOP_ACT_QUIT };

struct top_state {
	bool   paused, data_only, help, prompting;
	enum top_sort sort;
	char   filter[TOP_FILTER_MAX];
	char   prompt[TOP_FILTER_MAX];
	size_t prompt_len;
};

void top_state_init(struct top_state *st);
enum top_action top_state_key(struct top_state *st, int key);
size_t top_select(const struct top_state *st, const struct top_session *rows, size_t n,
		  size_t *idx);
const char *top_sort_name(enum top_sort sort);

#endif
