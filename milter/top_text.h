/*
 * NAME
 *	top_text - smtptrace-top's lines as text, and the --once snapshot
 * SYNOPSIS
 *	#include "top_text.h"
 *
 *	void top_line_title(struct sbuf *sb, const struct top_scene *sc, int width);
 *	void top_line_counts(struct sbuf *sb, const struct top_scene *sc, int width);
 *	void top_line_rates(struct sbuf *sb, const struct top_scene *sc, int width);
 *	void top_table_head(struct sbuf *sb, const struct top_scene *sc,
 *	    const struct top_cols *c);
 *	void top_table_row(struct sbuf *sb, const struct top_scene *sc,
 *	    const struct top_session *s, const struct top_cols *c);
 *	void top_recent_head(struct sbuf *sb, const struct top_cols *c);
 *	void top_recent_row(struct sbuf *sb, const struct top_scene *sc,
 *	    const struct top_ending *e, const struct top_cols *c);
 *	void top_line_status(struct sbuf *sb, const struct top_state *st,
 *	    const char *error, const char *updated, double interval_s,
 *	    int width, int flags);
 *	double top_scale(const struct top_scene *sc);
 *	void top_text_once(const struct top_scene *sc, int width,
 *	    void (*emit)(void *arg, const char *line), void *arg);
 * DESCRIPTION
 *	The same lines serve the screen (top_view, which adds colour and
 *	attributes by column) and the --once snapshot: no terminal codes,
 *	every value from the server through top_fit(), each line at most
 *	width columns (TOP_LINE_MAX bytes hold one). A stalled session's
 *	row starts with '!'.
 *
 *	A scene is what one poll gave: the URL, the milter's documents (any
 *	may be NULL: not fetched yet, or /recent not served), the rates
 *	between the last two /metrics samples, the refresh interval, and
 *	TOP_ASCII when the terminal is not UTF-8.
 *
 *	top_line_status() is the screen's last line: the filter prompt while
 *	it is open; else the error of the last poll (with "retrying") or the
 *	time of the last good one, and what the keys have set.
 *
 *	top_scale() is the bars' full scale: the milter's stall.warn_after,
 *	or 30 s when it does not say.
 *
 *	top_text_once() hands emit() every line of the snapshot in order
 *	(without newlines): the three top lines, the sessions sorted by time
 *	in phase, the recent endings newest first.
 *
 *	Pure.
 */
#ifndef SMTPTRACE_TOP_TEXT_H
#define SMTPTRACE_TOP_TEXT_H

#include "sbuf.h"
#include "top_layout.h"
#include "top_model.h"
#include "top_prom.h"
#include "top_rates.h"
#include "top_state.h"

#define TOP_WIDTH_MAX	1000			/* columns; wider is cut */
#define TOP_LINE_MAX	(4 * TOP_WIDTH_MAX + 64)	/* bytes of one line */

struct top_scene {
	const char *url;
	const struct top_transactions *txns;
	const struct top_recent *recent;
	const struct top_metrics *metrics;
	const struct top_rates *rates;
	double interval_s;
	int flags;			/* TOP_ASCII */
};

void top_line_title(struct sbuf *sb, const struct top_scene *sc, int width);
void top_line_counts(struct sbuf *sb, const struct top_scene *sc, int width);
void top_line_rates(struct sbuf *sb, const struct top_scene *sc, int width);
void top_table_head(struct sbuf *sb, const struct top_scene *sc, const struct top_cols *c);
void top_table_row(struct sbuf *sb, const struct top_scene *sc, const struct top_session *s,
		   const struct top_cols *c);
void top_recent_head(struct sbuf *sb, const struct top_cols *c);
void top_recent_row(struct sbuf *sb, const struct top_scene *sc, const struct top_ending *e,
		    const struct top_cols *c);
void top_line_status(struct sbuf *sb, const struct top_state *st, const char *error,
		     const char *updated, double interval_s, int width, int flags);
double top_scale(const struct top_scene *sc);
void top_text_once(const struct top_scene *sc, int width,
		   void (*emit)(void *arg, const char *line), void *arg);

#endif
