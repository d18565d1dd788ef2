/*
 * NAME
 *	top_model - the milter's /transactions and /recent documents as structs
 * SYNOPSIS
 *	#include "top_model.h"
 *
 *	int top_transactions_parse(const char *body, size_t len,
 *	    struct top_transactions *t, char *err, size_t errsize);
 *	void top_transactions_free(struct top_transactions *t);
 *	int top_recent_parse(const char *body, size_t len,
 *	    struct top_recent *r, char *err, size_t errsize);
 *	void top_recent_free(struct top_recent *r);
 * DESCRIPTION
 *	Parses what smtptrace-milter serves (json-c) into plain structs
 *	that own their strings. Strings are kept as the server sent them
 *	(bytes, cut to TOP_STR_MAX with "...", a NUL byte turned into DEL):
 *	making them safe to show is top_str's job. NULL stands for JSON null
 *	or a missing key; numbers a document did not give are -1.
 *
 *	A document that is not smtptrace's (HTML, broken JSON, not an
 *	object, a required key missing or of the wrong type) returns -1 with
 *	a message in err that says which; the struct is then empty. Required
 *	in /transactions: "transactions" (an array) and, in each row,
 *	"session", "phase" and "seconds_in_phase"; in /recent: "recent" and,
 *	in each row, "outcome". Other keys may be missing (older milters).
 *	Rows past TOP_ROWS_MAX are dropped and "truncated" set.
 *
 *	Pure: no I/O, no global state. Free functions accept a zeroed or
 *	already freed struct.
 */
#ifndef SMTPTRACE_TOP_MODEL_H
#define SMTPTRACE_TOP_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#define TOP_STR_MAX	1024
#define TOP_ROWS_MAX	20000

struct top_session {
	char   *session, *client, *helo, *from, *phase, *queue_id, *tls;
	long long txn, rcpt, rcpt_rejected, warnings;
	double  in_phase_s;		/* >= 0 */
	double  connected_s;		/* -1: not given */
	bool    stalled;
};

struct top_transactions {
	long long now_ms, uptime_s, stall_warn_after_s;
	long long open, in_data, stalled;
	char   *version;
	struct top_session *rows;
	size_t  n;
	bool    truncated;
};

struct top_ending {
	char   *session, *queue_id, *client, *helo, *from, *outcome, *reply, *end_time;
	long long txn, upload_ms, duration_ms, ended_ms_ago;
};

struct top_recent {
	long long size;
	struct top_ending *rows;
	size_t  n;
};

int top_transactions_parse(const char *body, size_t len, struct top_transactions *t,
			   char *err, size_t errsize);
void top_transactions_free(struct top_transactions *t);
int top_recent_parse(const char *body, size_t len, struct top_recent *r, char *err,
		     size_t errsize);
void top_recent_free(struct top_recent *r);

#endif
