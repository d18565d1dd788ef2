/*
 * NAME
 *	log - syslog output, with the records rendered in the configured format
 * SYNOPSIS
 *	log_open(ident, facility, to_stderr, verbose);
 *	log_record(&rec, LOG_FORMAT_KV);
 *	log_degraded(DEGRADED_NO_MEMORY, "session");
 * DESCRIPTION
 *	One fixed ladder of severities: LOG_ERR for what stops the daemon,
 *	LOG_WARNING for what makes it observe less, LOG_INFO for records and
 *	start/stop, LOG_DEBUG for per-event lines under -v. With to_stderr
 *	(the -f flag) every line also goes to standard error. Thread-safe
 *	(syslog(3) locks); the degradation counters are atomic.
 */
#ifndef SMTPTRACE_LOG_H
#define SMTPTRACE_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "record.h"

/*
 * The longest record line: under rsyslog's default message size (8 KiB,
 * with the "ident[pid]: " prefix and the syslog header), where a longer
 * one is cut and a JSON line stops being JSON.
 */
#define LOG_RECORD_MAX	7900

enum degraded {
	DEGRADED_NO_MEMORY,	/* a session could not be allocated */
	DEGRADED_NO_SESSION,	/* an event came for a connection we lost */
	DEGRADED_HEADER_EDIT,	/* the MTA refused a header change */
	DEGRADED_LOG_CUT,	/* a record did not fit the line buffer */
	DEGRADED_LOG_SHORTENED,	/* a record's values were capped shorter to fit */
	DEGRADED_LOG_DROPPED,	/* the log socket did not take lines: dropped */
	DEGRADED_FD_LIMIT,	/* as many MTA connections as open files allow */
	DEGRADED_HEADER_CUT,	/* the header did not fit: a short one went in */
	DEGRADED_REGISTRY_FULL,	/* no memory to watch a transaction in DATA */
	DEGRADED__COUNT
};

/* Where finished lines go; syslog unless set before log_open. */
typedef void (*log_sink_fn)(int priority, const char *line);
void log_set_sink(log_sink_fn fn);

void log_open(const char *ident, int facility, bool to_stderr, bool verbose);
/*
 * From now on a writer thread calls syslog (logqueue.h): a log socket
 * nobody reads can no longer hold a callback. Start it with the signals
 * blocked; stop it last (it writes out what is queued, 2 s at most).
 */
int log_start_writer(void);
void log_stop_writer(void);
void log_close(void);
bool log_verbose(void);
/* -v or log.verbose changed by a reload. */
void log_set_verbose(bool on);
void log_msg(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_record(const struct record *r, int format);
/* Count a failure that made the milter observe less; log the first of each kind. */
void log_degraded(enum degraded kind, const char *detail);
unsigned long log_degraded_count(enum degraded kind);
/* Its metric label, e.g. "no-memory". */
const char *log_degraded_name(enum degraded kind);

#endif
