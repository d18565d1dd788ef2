/*
 * NAME
 *	top_layout - columns, durations, bars and colours of smtptrace-top
 * SYNOPSIS
 *	#include "top_layout.h"
 *
 *	void top_layout(int width, struct top_cols *c);
 *	void top_panes(int lines, size_t sessions, size_t recent,
 *	    struct top_panes *p);
 *	void top_duration(struct sbuf *sb, double seconds);
 *	void top_bar(struct sbuf *sb, double seconds, double scale, int width);
 *	enum top_colour top_outcome_colour(const char *outcome);
 * DESCRIPTION
 *	top_layout() gives every column's width for a screen or snapshot of
 *	width columns (at least 80 is assumed; less still works, cut): the
 *	sessions table (a marker, client, HELO, sender, phase, time in
 *	phase, time connected from 100 columns on, a bar) and the recent
 *	endings (age, outcome, reply, upload time, queue id from 110 columns
 *	on, client, sender). Each column is followed by one space; *_at is
 *	where a column starts.
 *
 *	top_panes() splits lines (what is left under the top lines and above
 *	the status line) between the sessions table and the recent pane,
 *	each with its heading line: the recent pane gets at least 3 rows (a
 *	third of the room when there are many sessions), the table what is
 *	left; neither takes rows it has nothing to show in.
 *
 *	top_duration() writes seconds in at most 7 characters ("4.2s",
 *	"512s", "14m07s", "3h02m", "12d05h"); NaN or a negative value writes
 *	"-"; more than 10^12 s (+Inf too) counts as 10^12.
 *	top_bar() writes "[###.....]" width characters wide, filled in
 *	proportion to seconds / scale (full from scale on).
 *
 *	top_outcome_colour(): accepted green; refused-* and discarded
 *	yellow; ended-*, abandoned-* and timeout-* red; others none.
 *
 *	Pure.
 */
#ifndef SMTPTRACE_TOP_LAYOUT_H
#define SMTPTRACE_TOP_LAYOUT_H

#include <stddef.h>

#include "sbuf.h"

enum top_colour { TOP_COLOUR_NONE, TOP_COLOUR_GREEN, TOP_COLOUR_YELLOW, TOP_COLOUR_RED };

struct top_cols {
	int width;
	/* sessions: marker (1) client helo from phase in_phase [connected] bar */
	int client, helo, from, phase, in_phase, connected, bar;
	int bar_at;
	/* recent endings: ago outcome reply upload [queue_id] client from */
	int ago, outcome, reply, upload, queue_id, r_client, r_from;
	int outcome_at;
};

struct top_panes {
	int table_rows;		/* session rows, under the table's heading */
	int recent_rows;	/* ending rows, under the pane's heading */
};

void top_layout(int width, struct top_cols *c);
void top_panes(int lines, size_t sessions, size_t recent, struct top_panes *p);
void top_duration(struct sbuf *sb, double seconds);
void top_bar(struct sbuf *sb, double seconds, double scale, int width);
enum top_colour top_outcome_colour(const char *outcome);

#endif
