/*
 * NAME
 *	top_view - smtptrace-top's full screen (ncurses)
 * SYNOPSIS
 *	#include "top_view.h"
 *
 *	int top_view_start(bool colour, char *err, size_t errsize);
 *	void top_view_draw(const struct top_scene *sc, const struct top_state *st,
 *	    const char *error, const char *updated);
 *	int top_view_key(int timeout_ms);
 *	int top_view_flags(void);
 *	void top_view_stop(void);
 * DESCRIPTION
 *	top_view_start() takes the terminal (the alternate screen, no echo,
 *	no cursor; colour when asked for and the terminal has it) and arms
 *	the restore: top_view_stop() at exit, and a handler for crashes
 *	(SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) that writes back the
 *	terminal modes and leaves the alternate screen before the signal
 *	goes on to whatever handled it before. -1 with err when stdin or
 *	stdout is not a terminal or ncurses cannot start.
 *
 *	top_view_draw() draws a whole frame with erase() and refresh():
 *	ncurses sends only what changed, so nothing flickers. The layout
 *	follows the screen's size at each call: the top lines, the sessions
 *	table, the recent endings, the status line; a help box over them
 *	when st->help.
 *
 *	top_view_key() waits up to timeout_ms for a key: a byte, one of
 *	top_state's TOP_KEY_*, TOP_VIEW_RESIZE when the terminal changed
 *	size, or -1 for none (also when a signal interrupted the wait).
 *
 *	top_view_flags() is TOP_ASCII when the locale is not UTF-8.
 *	top_view_stop() gives the terminal back; it may be called more than
 *	once. Which thread: the main one only (ncurses is not thread-safe).
 */
#ifndef SMTPTRACE_TOP_VIEW_H
#define SMTPTRACE_TOP_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "top_state.h"
#include "top_text.h"

#define TOP_VIEW_RESIZE	(-2)

int top_view_start(bool colour, char *err, size_t errsize);
void top_view_draw(const struct top_scene *sc, const struct top_state *st, const char *error,
		   const char *updated);
int top_view_key(int timeout_ms);
int top_view_flags(void);
void top_view_stop(void);

#endif
