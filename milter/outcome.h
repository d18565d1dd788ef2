/*
 * NAME
 *	outcome - how a transaction ended, and what the client was told
 * SYNOPSIS
 *	enum outcome o = outcome_decide(&txn, end_ms, &limits);
 * DESCRIPTION
 *	Decides, from the phases seen and the time of the end event, how a
 *	transaction ended. The milter never sees the MTA's replies; the reply
 *	each outcome carries is the one the client most likely got, and the
 *	sentence says why. Pure: times come in as arguments.
 */
#ifndef SMTPTRACE_OUTCOME_H
#define SMTPTRACE_OUTCOME_H

#include <stdint.h>

#include "sbuf.h"
#include "session.h"

enum outcome {
	OUTCOME_ACCEPTED,		/* end of message seen */
	OUTCOME_TIMEOUT_AFTER_354,	/* MTA timed the client out in DATA */
	OUTCOME_ABANDONED_AFTER_354,	/* client left in DATA */
	OUTCOME_ABORTED_IN_CONTENT,	/* ended while content was passed on */
	OUTCOME_ABORTED_BEFORE_DATA,	/* RSET, QUIT or disconnect before DATA */
	OUTCOME_NO_VALID_RECIPIENTS,	/* every RCPT was rejected */
	OUTCOME__COUNT
};

struct outcome_limits {
	int64_t data_timeout_ms;	/* the MTA's smtpd_timeout */
	int64_t tolerance_ms;		/* how much earlier still counts */
};

enum outcome outcome_decide(const struct txn *t, int64_t end_ms,
			    const struct outcome_limits *limits);
const char *outcome_name(enum outcome o);
const char *outcome_explain(enum outcome o);
/* The reply the client most likely got, e.g. "421 4.4.2"; "" when none. */
void outcome_reply(enum outcome o, const struct txn *t, struct sbuf *sb);

#endif
