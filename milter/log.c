/*
 * NAME
 *	log - syslog output, with the records rendered in the configured format
 * DESCRIPTION
 *	See log.h. The only mutable globals are set once by log_open (and
 *	log_set_sink) before any thread starts, and the atomic counters.
 *	Once log_start_writer has run, lines go through logqueue.c.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config.h"
#include "escape.h"
#include "logqueue.h"
#include "render.h"
#include "sbuf.h"

#define LOG_LINE_MAX	16384
/* Room for about 2,000 lines while the log socket does not take them. */
#define LOG_QUEUE_BYTES	(2 * 1024 * 1024)

static atomic_bool verbose;
static log_sink_fn sink;
static atomic_ulong degraded_counts[DEGRADED__COUNT];

static const char *const degraded_names[DEGRADED__COUNT] = {
	[DEGRADED_NO_MEMORY] = "out of memory",
	[DEGRADED_NO_SESSION] = "event without a session",
	[DEGRADED_HEADER_EDIT] = "header edit refused by the MTA",
	[DEGRADED_LOG_CUT] = "record longer than a log line",
	[DEGRADED_LOG_SHORTENED] = "record's values shortened to fit one log line",
	[DEGRADED_LOG_DROPPED] = "log lines dropped: the log socket did not take them",
	[DEGRADED_FD_LIMIT] = "as many MTA connections as the open-files limit (file "
			      "descriptors) allows; new ones wait until libmilter can accept them",
	[DEGRADED_HEADER_CUT] = "header longer than its buffer (a short one was added)",
	[DEGRADED_REGISTRY_FULL] = "no memory to watch a transaction in DATA for stalls",
};

static void
syslog_sink(int priority, const char *line)
{
	syslog(priority, "%s", line);
}

void
log_set_sink(log_sink_fn fn)
{
	sink = fn;
}

/*
 * Under systemd, standard error goes to the journal, and so does syslog:
 * writing both would log every line twice.
 */
static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	       fstat(2, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void
log_open(const char *ident, int facility, bool to_stderr, bool be_verbose)
{
	if (to_stderr && stderr_is_journal())
		to_stderr = false;
	atomic_store(&verbose, be_verbose);
	if (sink == NULL)
		sink = syslog_sink;
	openlog(ident, LOG_PID | LOG_NDELAY | (to_stderr ? LOG_PERROR : 0),
		facility);
	setlogmask(LOG_UPTO(be_verbose ? LOG_DEBUG : LOG_INFO));
}

void
log_close(void)
{
	closelog();
}

bool
log_verbose(void)
{
	return atomic_load(&verbose);
}

void
log_set_verbose(bool on)
{
	atomic_store(&verbose, on);
	setlogmask(LOG_UPTO(on ? LOG_DEBUG : LOG_INFO));
}

static void
write_line(int priority, const char *line)
{
	(sink ? sink : syslog_sink)(priority, line);
}

/* Through the writer thread once it runs: a callback never waits on syslog. */
static void
emit(int priority, const char *line)
{
	if (priority == LOG_DEBUG && !atomic_load(&verbose))
		return;
	if (!logqueue_running())
		write_line(priority, line);
	else if (!logqueue_push(priority, line))
		atomic_fetch_add(&degraded_counts[DEGRADED_LOG_DROPPED], 1);
}

int
log_start_writer(void)
{
	return logqueue_start(write_line, LOG_QUEUE_BYTES);
}

void
log_stop_writer(void)
{
	logqueue_stop(2000);
}

void
log_msg(int priority, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	emit(priority, line);
}

/*
 * One record, one syslog message of at most LOG_RECORD_MAX bytes: when the
 * values at their full cap make it longer, they are all capped shorter
 * (each cut one ends in "..."), never the line's syntax.
 */
void
log_record(const struct record *r, int format)
{
	static const size_t value_caps[] = { RENDER_LOG_VALUE_MAX, 256, 128, 64, 32, 16 };
	char line[LOG_LINE_MAX];
	struct sbuf sb;
	size_t i = 0;

	for (;; i++) {
		sbuf_init(&sb, line, sizeof line);
		if (format == LOG_FORMAT_JSON)
			render_json_max(r, value_caps[i], &sb);
		else
			render_kv_max(r, value_caps[i], &sb);
		if ((!sb.overflow && sb.len <= LOG_RECORD_MAX) ||
		    i + 1 == sizeof value_caps / sizeof value_caps[0])
			break;
	}
	if (sb.overflow || sb.len > LOG_RECORD_MAX)
		log_degraded(DEGRADED_LOG_CUT, r->queue_id);
	else if (i > 0)
		log_degraded(DEGRADED_LOG_SHORTENED, r->queue_id);
	emit(LOG_INFO, line);
}

static const char *const degraded_labels[DEGRADED__COUNT] = {
	[DEGRADED_NO_MEMORY] = "no-memory",
	[DEGRADED_NO_SESSION] = "no-session",
	[DEGRADED_HEADER_EDIT] = "header-edit",
	[DEGRADED_LOG_CUT] = "log-cut",
	[DEGRADED_LOG_SHORTENED] = "log-shortened",
	[DEGRADED_LOG_DROPPED] = "log-dropped",
	[DEGRADED_FD_LIMIT] = "fd-limit",
	[DEGRADED_HEADER_CUT] = "header-cut",
	[DEGRADED_REGISTRY_FULL] = "registry-full",
};

const char *
log_degraded_name(enum degraded kind)
{
	return (unsigned)kind < DEGRADED__COUNT ? degraded_labels[kind] : "unknown";
}

void
log_degraded(enum degraded kind, const char *detail)
{
	if ((unsigned)kind >= DEGRADED__COUNT)
		return;
	if (atomic_fetch_add(&degraded_counts[kind], 1) == 0) {
		/* the detail may be the MTA's (a queue id): escaped like any value */
		char safe[200];
		struct sbuf sb;
		sbuf_init(&sb, safe, sizeof safe);
		if (detail != NULL)
			escape_kv(&sb, detail, 64);
		log_msg(LOG_WARNING,
		       "observing less: %s%s%s (logged once; later ones are only counted)",
		       degraded_names[kind], detail ? ": " : "", safe);
	}
}

unsigned long
log_degraded_count(enum degraded kind)
{
	return (unsigned)kind < DEGRADED__COUNT ? atomic_load(&degraded_counts[kind]) : 0;
}
