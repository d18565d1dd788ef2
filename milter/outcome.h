/*
 * NAME
 *	outcome - how a transaction ended, and what the client was told
 * SYNOPSIS
 *	enum outcome o = outcome_decide(&txn, end_ms, next, &limits);
 *	outcome_name(o); outcome_explain(o); outcome_verdict_text(o);
 *	outcome_reply(o, &txn, &reply); outcome_from_name("ended-after-354", n);
 * DESCRIPTION
 *	The outcomes, their implied replies and sentences live once, in
 *	outcome.def; this is their API. outcome_decide() tells, from the
 *	phases the milter saw, what followed the end event and its time, how
 *	a transaction ended, claiming nothing the milter did not see: a
 *	milter never sees the MTA's final reply, and a message refused after
 *	the final dot often never reaches its content stages. Outcomes of
 *	scope OUTCOME_LOG are only told by the MTA's log (smtptrace-explain
 *	--verdicts). Pure: times come in as arguments.
 */
#ifndef SMTPTRACE_OUTCOME_H
#define SMTPTRACE_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"
#include "session.h"

enum outcome {
#define OUTCOME(id, name, code, enh, scope, seen, verdict) OUTCOME_##id,
#include "outcome.def"
#undef OUTCOME
	OUTCOME__COUNT
};

enum outcome_scope {
	OUTCOME_MILTER,		/* decided from what the milter sees */
	OUTCOME_LOG,		/* only the MTA's log tells it */
};

/* What came after the end event of a transaction (see outcome_decide). */
enum outcome_next {
	OUTCOME_NEXT_NONE,	/* end of message, or not known */
	OUTCOME_NEXT_COMMAND,	/* the client went on: MAIL, HELO, another command */
	OUTCOME_NEXT_CLOSE,	/* the connection closed */
};

struct outcome_limits {
	int64_t data_timeout_ms;	/* the MTA's smtpd_timeout */
	int64_t tolerance_ms;		/* how much earlier still counts */
};

/*
 * A reply the outcome implies: a 3-digit code, or only its class (the
 * first digit of an enhanced code, as for rejected recipients), and an
 * enhanced code. All empty: no reply implied.
 */
struct implied_reply {
	int  code;		/* 200-599; 0 none */
	char class_digit;	/* '2', '4' or '5'; 0 none */
	char enhanced[16];	/* "4.4.2"; "" none */
};

enum outcome outcome_decide(const struct txn *t, int64_t end_ms,
			    enum outcome_next next,
			    const struct outcome_limits *limits);
/* A transaction in DATA that saw no content: its end waits for what follows. */
bool outcome_needs_next(const struct txn *t);

const char *outcome_name(enum outcome o);
/* The outcome by its name (len bytes, not NUL-terminated); -1 if none. */
int outcome_from_name(const char *name, size_t len);
enum outcome_scope outcome_scope(enum outcome o);
/* The milter's sentence (for an OUTCOME_LOG outcome, its verdict sentence). */
const char *outcome_explain(enum outcome o);
/* The sentence once the MTA's log settled it (else the milter's). */
const char *outcome_verdict_text(enum outcome o);

void outcome_reply(enum outcome o, const struct txn *t, struct implied_reply *r);
/* "421 4.4.2", "5xx 5.7.1"; nothing for no reply. */
void implied_reply_format(const struct implied_reply *r, struct sbuf *sb);
bool implied_reply_empty(const struct implied_reply *r);

#endif
