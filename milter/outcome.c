/*
 * NAME
 *	outcome - how a transaction ended, and what the client was told
 * DESCRIPTION
 *	See outcome.h. The rules, in order:
 *	- end of message seen: accepted (as far as the milter can tell);
 *	- DATA seen but no content: the client got 354 and never sent the
 *	  final dot. Ended at or after the MTA's data timeout (less the
 *	  tolerance): the MTA timed it out (421 4.4.2); earlier: the client
 *	  went away. Postfix's timeout counts from the last byte read, so a
 *	  client that sent for a while and then went silent still ends after
 *	  the timeout; one that dripped data past the timeout and then
 *	  disconnected is counted as a timeout too (nothing tells them apart);
 *	- DATA and some content seen, no end of message: the MTA stopped it
 *	  while handing over the content (another milter, a content limit);
 *	- no DATA: every recipient rejected, or the client ended it early.
 */
#include "outcome.h"

#include <stdlib.h>

struct outcome_info {
	const char *name;
	const char *reply;
	const char *explain;
};

static const struct outcome_info outcomes[OUTCOME__COUNT] = {
	[OUTCOME_ACCEPTED] = {
		"accepted", "250 2.0.0",
		"the client sent the whole message; the MTA most likely queued "
		"it with 250 (a milter never sees the final reply)",
	},
	[OUTCOME_TIMEOUT_AFTER_354] = {
		"timeout-after-354", "421 4.4.2",
		"the client got 354 but did not finish the message within the "
		"MTA's data timeout; the MTA gave up with 421 4.4.2 and "
		"discarded the partial message",
	},
	[OUTCOME_ABANDONED_AFTER_354] = {
		"abandoned-after-354", "",
		"the client got 354, then closed the connection before the "
		"final dot; the partial message was discarded and no reply "
		"was sent",
	},
	[OUTCOME_ABORTED_IN_CONTENT] = {
		"aborted-in-content", "",
		"the whole message arrived but the MTA stopped it while passing "
		"its content to the milters (another milter or a content check "
		"refused it)",
	},
	[OUTCOME_ABORTED_BEFORE_DATA] = {
		"aborted-before-data", "",
		"the transaction ended before DATA: the client sent RSET or "
		"QUIT, or disconnected, after MAIL FROM",
	},
	[OUTCOME_NO_VALID_RECIPIENTS] = {
		"no-valid-recipients", "",
		"the MTA rejected every recipient, so no message could follow; "
		"the client got the rejections listed in rejects",
	},
};

enum outcome
outcome_decide(const struct txn *t, int64_t end_ms,
	       const struct outcome_limits *limits)
{
	if (t->at[PHASE_EOM] >= 0)
		return OUTCOME_ACCEPTED;
	if (t->at[PHASE_DATA] >= 0) {
		if (txn_first_content(t) >= 0)
			return OUTCOME_ABORTED_IN_CONTENT;
		int64_t in_data = end_ms - t->at[PHASE_DATA];
		int64_t limit = limits->data_timeout_ms - limits->tolerance_ms;
		return in_data >= limit ? OUTCOME_TIMEOUT_AFTER_354
					: OUTCOME_ABANDONED_AFTER_354;
	}
	if (t->rcpt_accepted == 0 && t->rcpt_rejected > 0)
		return OUTCOME_NO_VALID_RECIPIENTS;
	return OUTCOME_ABORTED_BEFORE_DATA;
}

const char *
outcome_name(enum outcome o)
{
	return (unsigned)o < OUTCOME__COUNT ? outcomes[o].name : "unknown";
}

const char *
outcome_explain(enum outcome o)
{
	return (unsigned)o < OUTCOME__COUNT ? outcomes[o].explain : "";
}

void
outcome_reply(enum outcome o, const struct txn *t, struct sbuf *sb)
{
	if ((unsigned)o >= OUTCOME__COUNT)
		return;
	if (o == OUTCOME_NO_VALID_RECIPIENTS && t->rejects_kept > 0) {
		/* Only the enhanced code reaches a milter; its first digit
		 * is the class of the 3-digit code the client got. */
		const char *status = t->rejects[0].status;
		if (status[0] == '4' || status[0] == '5')
			sbuf_printf(sb, "%cxx %s", status[0], status);
		return;
	}
	sbuf_puts(sb, outcomes[o].reply);
}
