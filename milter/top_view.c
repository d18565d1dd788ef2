/*
 * NAME
 *	top_view - smtptrace-top's full screen (ncurses)
 * DESCRIPTION
 *	See top_view.h. The lines are top_text's; this file only places
 *	them and adds attributes: reverse video for headings, colour by
 *	column (a stalled row, the bars, the outcomes). Its state (whether
 *	the screen is up, colour, what the crash handler writes back) is
 *	file-static: there is one terminal.
 */
#include "top_view.h"

#include <curses.h>
#include <langinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <termios.h>
#include <unistd.h>

#include "top_str.h"

enum { PAIR_GREEN = 1, PAIR_YELLOW, PAIR_RED };

static SCREEN *screen;
static bool active, coloured;
static int flags;
static struct termios saved_tty;
static bool have_saved_tty;
static char restore_seq[256];		/* leave the alternate screen, show the cursor */
static size_t restore_len;
static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
static struct sigaction crash_old[sizeof crash_signals / sizeof crash_signals[0]];

/*
 * Async-signal-safe: write(2) and tcsetattr(3) only. Then the handler from
 * before takes over: a fault runs again when this returns, a signal sent
 * with kill(2) or raise(3) is sent again.
 */
static void
on_crash(int sig, siginfo_t *info, void *context)
{
	(void)context;
	if (restore_len > 0 && write(STDOUT_FILENO, restore_seq, restore_len) < 0)
		restore_len = 0;
	if (have_saved_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		if (crash_signals[i] == sig)
			sigaction(sig, &crash_old[i], NULL);
	if (info == NULL || info->si_code <= 0)		/* SI_USER, SI_TKILL, SI_QUEUE */
		raise(sig);
}

static void
add_cap(const char *name)
{
	const char *s = tigetstr(name);
	size_t n;

	if (s == NULL || s == (const char *)-1 || (n = strlen(s)) >= sizeof restore_seq - restore_len)
		return;
	memcpy(restore_seq + restore_len, s, n);
	restore_len += n;
}

static void
arm_crash_restore(void)
{
	struct sigaction sa;

	add_cap("sgr0");
	add_cap("cnorm");
	add_cap("rmkx");
	add_cap("rmcup");
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_crash;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		sigaction(crash_signals[i], &sa, &crash_old[i]);
}

int
top_view_flags(void)
{
	return flags;
}

int
top_view_start(bool colour, char *err, size_t errsize)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		snprintf(err, errsize, "not a terminal (--once writes a snapshot to standard output)");
		return -1;
	}
	const char *codeset = nl_langinfo(CODESET);
	flags = codeset != NULL && strcmp(codeset, "UTF-8") == 0 ? 0 : TOP_ASCII;
	have_saved_tty = tcgetattr(STDIN_FILENO, &saved_tty) == 0;
	if ((screen = newterm(NULL, stdout, stdin)) == NULL) {
		snprintf(err, errsize, "cannot start the terminal (is TERM set?)");
		return -1;
	}
	active = true;
	atexit(top_view_stop);
	arm_crash_restore();
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	coloured = colour && has_colors() && start_color() == OK;
	if (coloured) {
		use_default_colors();
		init_pair(PAIR_GREEN, COLOR_GREEN, -1);
		init_pair(PAIR_YELLOW, COLOR_YELLOW, -1);
		init_pair(PAIR_RED, COLOR_RED, -1);
	}
	return 0;
}

void
top_view_stop(void)
{
	if (!active)
		return;
	active = false;
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		sigaction(crash_signals[i], &crash_old[i], NULL);
	curs_set(1);
	endwin();
	delscreen(screen);
	screen = NULL;
}

static attr_t
colour_attr(enum top_colour c)
{
	if (!coloured)
		return c == TOP_COLOUR_RED ? A_BOLD : A_NORMAL;
	switch (c) {
	case TOP_COLOUR_GREEN: return COLOR_PAIR(PAIR_GREEN);
	case TOP_COLOUR_YELLOW: return COLOR_PAIR(PAIR_YELLOW);
	case TOP_COLOUR_RED: return COLOR_PAIR(PAIR_RED) | A_BOLD;
	case TOP_COLOUR_NONE: break;
	}
	return A_NORMAL;
}

/* One line at (y, x), in attr; a heading's attr covers the whole row. */
static void
put(int y, int x, const char *text, attr_t attr, bool whole_row)
{
	if (y < 0 || y >= LINES)
		return;
	attrset(attr);
	mvaddstr(y, x, text);
	if (whole_row)
		mvchgat(y, 0, -1, attr, PAIR_NUMBER(attr), NULL);
	attrset(A_NORMAL);
}

/* A stalled row in red (bold without colour); else the bar by how full it is. */
static void
draw_session(int y, const struct top_scene *sc, const struct top_session *s,
	     const struct top_cols *c)
{
	char line[TOP_LINE_MAX];
	struct sbuf sb;

	sbuf_init(&sb, line, sizeof line);
	top_table_row(&sb, sc, s, c);
	put(y, 0, line, s->stalled ? colour_attr(TOP_COLOUR_RED) : A_NORMAL, false);
	if (s->stalled || !coloured || c->bar_at + c->bar > COLS)
		return;
	double part = s->in_phase_s / top_scale(sc);
	sbuf_init(&sb, line, sizeof line);
	top_bar(&sb, s->in_phase_s, top_scale(sc), c->bar);
	put(y, c->bar_at, line, colour_attr(part >= 1 ? TOP_COLOUR_RED : part >= 0.5 ?
					    TOP_COLOUR_YELLOW : TOP_COLOUR_GREEN), false);
}

static void
draw_ending(int y, const struct top_scene *sc, const struct top_ending *e,
	    const struct top_cols *c)
{
	char line[TOP_LINE_MAX];
	struct sbuf sb;

	sbuf_init(&sb, line, sizeof line);
	top_recent_row(&sb, sc, e, c);
	put(y, 0, line, A_NORMAL, false);
	sbuf_init(&sb, line, sizeof line);
	top_fit(&sb, e->outcome, c->outcome, sc->flags);
	put(y, c->outcome_at, line, colour_attr(top_outcome_colour(e->outcome)), false);
}

/* The sessions table from line y, rows lines; returns the line after it. */
static int
draw_table(int y, int rows, const struct top_scene *sc, const struct top_state *st,
	   const struct top_cols *c, const size_t *idx, size_t n)
{
	char line[TOP_LINE_MAX];
	struct sbuf sb;

	sbuf_init(&sb, line, sizeof line);
	top_table_head(&sb, sc, c);
	put(y++, 0, line, A_REVERSE, true);
	if (n == 0) {
		put(y, 0, sc->txns == NULL ? "  (waiting for the milter)" :
			  st->data_only || st->filter[0] ? "  (none match)" : "  (none)", A_DIM, false);
	}
	for (int i = 0; i < rows && (size_t)i < n; i++) {
		if (i == rows - 1 && n > (size_t)rows) {
			sbuf_init(&sb, line, sizeof line);
			sbuf_printf(&sb, "  ... %zu more (sorted by %s)", n - (size_t)i,
				    top_sort_name(st->sort));
			put(y + i, 0, line, A_DIM, false);
			break;
		}
		draw_session(y + i, sc, &sc->txns->rows[idx[i]], c);
	}
	return y + rows;
}

static void
draw_help(void)
{
	static const char *const help[] = {
		" smtptrace-top: keys ",
		"",
		" q      quit",
		" p      pause or resume polling",
		" d      only the sessions in DATA, or all",
		" /      filter by client or sender (Enter: apply, Esc: keep)",
		" s      sort: time in phase, time connected, client",
		" ?      this help; any key closes it",
		"",
		" !      marks a session stalled after 354",
		"        (past the milter's stall.warn_after)",
	};
	int n = (int)(sizeof help / sizeof help[0]), w = 64;
	int top = (LINES - n - 2) / 2, left = (COLS - w) / 2;

	if (top < 0)
		top = 0;
	if (left < 0)
		left = 0;
	for (int i = -1; i <= n; i++) {
		char cut[80];
		struct sbuf sb;
		mvhline(top + 1 + i, left, ' ' | A_REVERSE, w);
		if (i < 0 || i >= n)
			continue;
		sbuf_init(&sb, cut, sizeof cut);
		top_fit(&sb, help[i], COLS - left - 1, 0);
		put(top + 1 + i, left + 1, cut, A_REVERSE, false);
	}
}

void
top_view_draw(const struct top_scene *sc, const struct top_state *st, const char *error,
	      const char *updated)
{
	char line[TOP_LINE_MAX];
	struct sbuf sb;
	struct top_cols c;
	struct top_panes p;
	int width = COLS < TOP_WIDTH_MAX ? COLS : TOP_WIDTH_MAX;
	size_t n = 0, nrecent = sc->recent != NULL ? sc->recent->n : 0;
	size_t *idx = NULL;

	if (sc->txns != NULL && sc->txns->n > 0 &&
	    (idx = malloc(sc->txns->n * sizeof *idx)) != NULL)
		n = top_select(st, sc->txns->rows, sc->txns->n, idx);
	erase();
	top_layout(width, &c);
	top_panes(LINES - 4, n, nrecent, &p);
	sbuf_init(&sb, line, sizeof line);
	top_line_title(&sb, sc, width);
	put(0, 0, line, A_REVERSE | A_BOLD, true);
	sbuf_init(&sb, line, sizeof line);
	top_line_counts(&sb, sc, width);
	put(1, 0, line, A_NORMAL, false);
	sbuf_init(&sb, line, sizeof line);
	top_line_rates(&sb, sc, width);
	put(2, 0, line, A_NORMAL, false);
	int y = draw_table(3, p.table_rows, sc, st, &c, idx, n);
	sbuf_init(&sb, line, sizeof line);
	top_recent_head(&sb, &c);
	put(y++, 0, line, A_REVERSE, true);
	if (sc->recent == NULL)
		put(y, 0, sc->txns == NULL ? "" : "  (this milter serves no /recent)", A_DIM, false);
	else if (nrecent == 0)
		put(y, 0, "  (none yet)", A_DIM, false);
	for (int i = 0; i < p.recent_rows && (size_t)i < nrecent; i++)
		draw_ending(y + i, sc, &sc->recent->rows[i], &c);
	sbuf_init(&sb, line, sizeof line);
	top_line_status(&sb, st, error, updated, sc->interval_s, width - 1, flags);
	put(LINES - 1, 0, line, error != NULL && error[0] ? colour_attr(TOP_COLOUR_RED) | A_REVERSE
							  : A_REVERSE, true);
	if (st->help)
		draw_help();
	free(idx);
	refresh();
}

int
top_view_key(int timeout_ms)
{
	timeout(timeout_ms);
	int key = getch();

	switch (key) {
	case ERR: return -1;
	case KEY_RESIZE: return TOP_VIEW_RESIZE;
	case KEY_BACKSPACE: case 8: case 127: return TOP_KEY_BACKSPACE;
	case KEY_ENTER: case '\r': case '\n': return TOP_KEY_ENTER;
	default: return key >= 0 && key <= 0xFF ? key : -1;
	}
}
