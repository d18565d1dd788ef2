/*
 * NAME
 *	verdict - join smtptrace's transaction lines with the MTA's log
 * SYNOPSIS
 *	struct verdict_table *t = verdict_table_create(cap, window, sink, arg);
 *	verdict_feed(t, &event);	once per line, in log order
 *	verdict_finish(t);		end of input: settle what is pending
 *	verdict_out_init(&vo, json);
 *	verdict_format(&v, &vo, &sb);	in the sink: one output line
 *	verdict_table_free(t);
 *
 *	smtptrace-explain --verdicts [--json] [--summary] [--window N] [FILE ...]
 *	    verdict_run(files, nfiles, &opts)
 * DESCRIPTION
 *	One verdict per smtptrace transaction line (kind=txn): what really
 *	happened and the reply the client really got, with the MTA's line that
 *	proves it. The lines of a transaction are joined by queue id; lines the
 *	MTA writes without one (Postfix's "lost connection|timeout after DATA")
 *	by the smtpd pid, whose last "QID: client=" line names the queue id;
 *	a NOQUEUE transaction line that ended before DATA is joined with a
 *	"reject: DATA" by the client's address and the sender (and the
 *	client's port when both lines have it).
 *
 *	Lines come in any order (syslog does not order two programs' lines;
 *	the milter's log and the MTA's may be read one after the other, either
 *	first). A verdict is settled, handed to the sink and forgotten:
 *	- when its evidence is complete: the smtptrace line and a deciding MTA
 *	  line; for a queued message the queue line and the first delivery
 *	  line or "removed"; for a refusal the MTA logs during the upload
 *	  (header/body checks, size limit), also the smtpd moving on (next
 *	  transaction or disconnect), since a client that leaves before its
 *	  final dot never got that reply; with no deciding line, the smtpd
 *	  session's end settles all but an accepted message;
 *	- a NOQUEUE line that cannot be joined (any outcome but
 *	  aborted-before-data), at once; no-valid-recipients is what the
 *	  milter itself saw (resolved=yes evidence=milter);
 *	- when it has been quiet for `window` lines (VERDICT_WINDOW): settled
 *	  as it stands (resolved=no when no MTA line decided it). An smtpd
 *	  pid's queue id is kept VERDICT_PID_WINDOWS times longer (or until
 *	  its "disconnect from"): its "timeout after DATA" comes minutes after
 *	  its "client=" line, and recreates the transaction it decides;
 *	- at verdict_finish(), oldest first;
 *	- when the table is full (`cap` entries, queue ids, pids and client
 *	  keys together): the least recently touched transaction (a pid when
 *	  there is none) is settled early as it stands, and counted
 *	  (verdict_stats; smtptrace-explain says so on stderr at the end). A
 *	  line adds at most two entries and a transaction quiet for W lines
 *	  goes, so about 2 W transactions (and one entry per live smtpd) are
 *	  ever pending: with the defaults the cap is reached only with a much
 *	  larger --window.
 *	An entry with no smtptrace line (mail smtptrace did not see) prints
 *	nothing. A second "QID: client=" or smtptrace line for a queue id
 *	already holding one starts a new transaction (short queue ids repeat):
 *	the old one is settled as it stands.
 *
 *	Limits: the lines of one host (pids and queue ids of two hosts would
 *	mix); in two logs read one after the other, a queue id that comes
 *	back within the window may pair the wrong lines (a real mail.log,
 *	interleaved, pairs them right); a NOQUEUE line that ended before DATA
 *	and was not refused waits the whole window for a "reject: DATA" that
 *	never comes (with tail -F, its verdict comes W lines later).
 *
 *	Memory: at most cap entries of sizeof(struct pending) (about 3 KiB),
 *	and the index (2 pointers an entry). The join is pure (no I/O, no
 *	clock); verdict_run is the command around it: reads files or stdin in
 *	constant memory (a line longer than 256 KiB is judged by its start),
 *	flushes stdout before it waits for input (tail -F).
 */
#ifndef SMTPTRACE_VERDICT_H
#define SMTPTRACE_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

#include "maillog.h"
#include "outcome.h"
#include "sbuf.h"

#define VERDICT_WINDOW		10000UL	/* lines a pending transaction may be quiet */
#define VERDICT_PID_WINDOWS	100UL	/* an smtpd pid: this many windows */
#define VERDICT_CAP		65536	/* pending entries */
#define VERDICT_EVIDENCE_MAX	400	/* bytes of the deciding line kept */

struct verdict {
	const char *queue_id;		/* "": none */
	const struct maillog_txn *txn;	/* the smtptrace line */
	const char *outcome;		/* the verdict's outcome name */
	int         outcome_id;		/* enum outcome; -1 an unknown name */
	bool        resolved;
	bool        by_milter;		/* resolved by what smtptrace saw */
	int         code;		/* -1: not known */
	const char *enhanced;		/* "": none */
	const char *reply;		/* "": none known */
	long long   bytes;		/* -1: not logged */
	const char *status, *dsn, *relay;	/* delivery; "": none */
	const char *evidence;		/* the deciding line; "" none */
};

struct verdict_stats {
	unsigned long lines;
	unsigned long verdicts;
	unsigned long settled_early;	/* entries pushed out of a full table */
	unsigned long early_verdicts;	/* of them, verdicts printed incomplete */
	unsigned long expired;		/* verdicts settled by the quiet window */
	size_t        cap;		/* the table's size, in entries */
};

typedef void (*verdict_sink)(const struct verdict *v, void *arg);

struct verdict_table;

/* NULL when out of memory; cap >= 1, window >= 1. */
struct verdict_table *verdict_table_create(size_t cap, unsigned long window,
					   verdict_sink sink, void *arg);
void verdict_table_free(struct verdict_table *t);
/* One line's event (MAILLOG_OTHER too: every line counts for the window). */
void verdict_feed(struct verdict_table *t, const struct maillog_event *ev);
void verdict_finish(struct verdict_table *t);
void verdict_stats(const struct verdict_table *t, struct verdict_stats *st);

/* How verdicts are written: the form, and a memo of explanations. */
#define VERDICT_MEMO 32
struct verdict_memo {
	int    outcome_id;		/* -2: an empty slot */
	bool   resolved;
	int    code;
	char   enhanced[MAILLOG_ENHANCED_MAX];
	size_t len;
	char   text[2048];		/* the explanation, escaped */
};
struct verdict_out {
	bool   json;
	size_t next;
	struct verdict_memo memo[VERDICT_MEMO];
};

void verdict_out_init(struct verdict_out *vo, bool json);
/* One verdict as a key=value line or a JSON object, with its newline. */
void verdict_format(const struct verdict *v, struct verdict_out *vo, struct sbuf *sb);

struct verdict_opts {
	bool          json;
	bool          summary;		/* the report only, at the end */
	unsigned long window;
	size_t        cap;
};

/* The command: 0 done, 3 a read or write error (the message on stderr). */
int verdict_run(char **files, int nfiles, const struct verdict_opts *o);

#endif
