/*
 * NAME
 *	smtptrace-top - every SMTP session in flight, live in a terminal (main)
 * SYNOPSIS
 *	smtptrace-top [-u URL] [-d SECONDS] [-c FILE] [--once] [--no-color]
 * DESCRIPTION
 *	The flags, then either one plain-text snapshot (--once) or the
 *	screen's loop: poll the milter every interval (top_poll), draw
 *	(top_view), wait for a key (top_state). SIGINT and SIGTERM end the
 *	loop; the terminal is given back, then the signal ends the process
 *	as it would have. See smtptrace-top(1).
 * DIAGNOSTICS
 *	Exit 0; 1 when the milter cannot be reached or does not speak
 *	smtptrace (--once), or the screen cannot start; 2 for a bad flag.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "top_conf.h"
#include "top_poll.h"
#include "top_str.h"
#include "top_view.h"
#include "version.h"

#define INTERVAL_MIN	0.2
#define INTERVAL_MAX	3600.0
#define ONCE_WIDTH	120	/* columns of a snapshot that goes to a file or pipe */
#define KEY_WAIT_MS	200	/* how often the loop looks at the stop flag */

struct options {
	char        url[TOP_URL_MAX];
	const char *conf;
	double      interval_s;
	bool        once, colour, url_given;
};

static volatile sig_atomic_t stop_signal;

static void
on_stop(int sig)
{
	stop_signal = sig;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: smtptrace-top [-u URL] [-d SECONDS] [-c FILE] [--once] [--no-color]\n"
		"  -u URL      the milter's HTTP listener (default: metrics.http_listen in\n"
		"              %s, else %s)\n"
		"  -d SECONDS  refresh interval, %g to %g (default 2)\n"
		"  -c FILE     read metrics.http_listen from FILE\n"
		"  --once      print one snapshot to standard output and exit\n"
		"  --no-color  no colours on the screen\n", TOP_CONF_PATH, TOP_DEFAULT_URL,
		INTERVAL_MIN, INTERVAL_MAX);
}

static int
parse_interval(const char *s, double *out)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < INTERVAL_MIN ||
	    v > INTERVAL_MAX)
		return -1;
	*out = v;
	return 0;
}

/* 0: go on; 1: done (help, version); -1: a bad flag (said on stderr). */
static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "once", no_argument, NULL, 'o' }, { "no-color", no_argument, NULL, 'n' },
		{ "no-colour", no_argument, NULL, 'n' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	char err[256];
	int c;

	while ((c = getopt_long(argc, argv, "u:d:c:hV", longs, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (top_url_base(optarg, o->url, sizeof o->url, err, sizeof err) < 0) {
				fprintf(stderr, "smtptrace-top: -u: %s\n", err);
				return -1;
			}
			o->url_given = true;
			break;
		case 'd':
			if (parse_interval(optarg, &o->interval_s) < 0) {
				fprintf(stderr, "smtptrace-top: -d: want seconds from %g to %g\n",
					INTERVAL_MIN, INTERVAL_MAX);
				return -1;
			}
			break;
		case 'c': o->conf = optarg; break;
		case 'o': o->once = true; break;
		case 'n': o->colour = false; break;
		case 'h': usage(stdout); return 1;
		case 'V': printf("smtptrace-top %s\n", SMTPTRACE_VERSION); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smtptrace-top: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

static void
resolve_url(struct options *o)
{
	char note[512];

	if (o->url_given)
		return;
	top_default_url(o->conf, o->url, sizeof o->url, note, sizeof note);
	if (note[0] != '\0')
		fprintf(stderr, "smtptrace-top: %s\n", note);
}

static void
emit_line(void *arg, const char *line)
{
	fputs(line, arg);
	fputc('\n', arg);
}

/* Sleeps seconds unless a stop signal comes; returns -1 if one did. */
static int
pause_for(double seconds)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - floor(seconds)) * 1e9) };

	while (!stop_signal && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return stop_signal ? -1 : 0;
}

static int
locale_flags(void)
{
	const char *codeset = nl_langinfo(CODESET);

	return codeset != NULL && strcmp(codeset, "UTF-8") == 0 ? 0 : TOP_ASCII;
}

static int
run_once(struct top_poll *p)
{
	struct top_scene sc;
	struct winsize ws;
	int width = ONCE_WIDTH;

	if (top_poll_metrics(p) < 0 || pause_for(p->interval_s) < 0 || top_poll_all(p) < 0) {
		fprintf(stderr, "smtptrace-top: %s\n", stop_signal ? "interrupted" : p->error);
		return 1;
	}
	const char *columns = getenv("COLUMNS");
	char *end;
	long cols = columns != NULL ? strtol(columns, &end, 10) : 0;
	if (columns != NULL && *end == '\0' && cols >= 40 && cols <= TOP_WIDTH_MAX)
		width = (int)cols;
	else if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
		 ws.ws_col > 0)
		width = ws.ws_col;
	top_poll_scene(p, &sc);
	sc.flags = locale_flags();
	top_text_once(&sc, width, emit_line, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smtptrace-top: cannot write the snapshot: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
clock_text(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%H:%M:%S", &tm) == 0)
		snprintf(buf, size, "?");
}

static int
run_screen(struct top_poll *p, const struct options *o)
{
	struct top_state st;
	struct top_scene sc;
	char err[256], updated[32] = "";
	double next = 0;
	bool redraw = true;

	if (top_view_start(o->colour, err, sizeof err) < 0) {
		fprintf(stderr, "smtptrace-top: %s\n", err);
		return 1;
	}
	top_state_init(&st);
	while (!stop_signal) {
		if (!st.paused && now_s() >= next) {
			double started = now_s();
			if (top_poll_all(p) == 0)
				clock_text(updated, sizeof updated);
			next = started + p->interval_s;
			redraw = true;
		}
		if (redraw && !stop_signal) {
			top_poll_scene(p, &sc);
			sc.flags = top_view_flags();
			top_view_draw(&sc, &st, p->error, updated);
			redraw = false;
		}
		double wait_ms = st.paused ? KEY_WAIT_MS : (next - now_s()) * 1000;
		int key = top_view_key(wait_ms < 0 ? 0 : wait_ms > KEY_WAIT_MS ? KEY_WAIT_MS
									  : (int)wait_ms);
		if (key == TOP_VIEW_RESIZE) {
			redraw = true;
		} else if (key != -1) {
			bool was_paused = st.paused;
			enum top_action act = top_state_key(&st, key);
			if (act == TOP_ACT_QUIT)
				break;
			redraw = redraw || act == TOP_ACT_REDRAW;
			if (was_paused && !st.paused)
				next = 0;
		}
	}
	top_view_stop();
	return 0;
}

static void
catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int
main(int argc, char **argv)
{
	struct options o = { .conf = TOP_CONF_PATH, .interval_s = 2, .colour = true };
	struct top_poll p;
	int rc = parse_args(argc, argv, &o);

	if (rc != 0)
		return rc < 0 ? 2 : 0;
	setlocale(LC_ALL, "");
	resolve_url(&o);
	catch_stop_signals();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    top_poll_init(&p, o.url, o.interval_s, &stop_signal) < 0) {
		fprintf(stderr, "smtptrace-top: cannot start libcurl\n");
		return 1;
	}
	rc = o.once ? run_once(&p) : run_screen(&p, &o);
	top_poll_free(&p);
	curl_global_cleanup();
	if (stop_signal) {
		signal(stop_signal, SIG_DFL);
		raise(stop_signal);
	}
	return rc;
}
