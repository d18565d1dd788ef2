/*
 * NAME
 *	outcome - how a transaction ended, and what the client was told
 * DESCRIPTION
 *	See outcome.h. The rules of outcome_decide, in order:
 *	- end of message seen: accepted, as far as the milter can tell (a
 *	  milter listed after it may still refuse the message);
 *	- DATA and some content seen, no end of message: the MTA stopped it
 *	  while handing over the content (another milter, a content limit);
 *	- DATA seen but no content. The MTA tells the milter with an abort,
 *	  which reaches it only with the client's next step, so the decision
 *	  waits for what follows (outcome_needs_next):
 *	  - the client went on in the session (MAIL, HELO, any command that
 *	    reaches the milter): it finished the message and got a final
 *	    reply, so something before smtptrace refused it: refused-after-354;
 *	  - the connection closed at or after the MTA's data timeout (less
 *	    the tolerance): timeout-after-354 (Postfix counts the timeout from
 *	    the last byte read, so a client that dripped data past it and then
 *	    left is counted here too: nothing tells them apart);
 *	  - it closed earlier: ended-after-354: the client left before the
 *	    final dot, or it was refused and quit, which look the same here;
 *	- no DATA: every recipient rejected, or the transaction ended early.
 */
#include "outcome.h"

#include <string.h>

#include "escape.h"

struct outcome_info {
	const char        *name;
	int                code;
	const char        *enhanced;
	enum outcome_scope scope;
	const char        *seen;
	const char        *verdict;
};

static const struct outcome_info outcomes[OUTCOME__COUNT] = {
#define OUTCOME(id, name, code, enh, scope, seen, verdict) \
	[OUTCOME_##id] = { name, code, enh, scope, seen, verdict },
#include "outcome.def"
#undef OUTCOME
};

bool
outcome_needs_next(const struct txn *t)
{
	return t->at[PHASE_EOM] < 0 && t->at[PHASE_DATA] >= 0 &&
	       txn_first_content(t) < 0;
}

enum outcome
outcome_decide(const struct txn *t, int64_t end_ms, enum outcome_next next,
	       const struct outcome_limits *limits)
{
	if (t->at[PHASE_EOM] >= 0)
		return OUTCOME_ACCEPTED;
	if (t->at[PHASE_DATA] >= 0) {
		if (txn_first_content(t) >= 0)
			return OUTCOME_ABORTED_IN_CONTENT;
		if (next == OUTCOME_NEXT_COMMAND)
			return OUTCOME_REFUSED_AFTER_354;
		int64_t in_data = end_ms - t->at[PHASE_DATA];
		int64_t limit = limits->data_timeout_ms - limits->tolerance_ms;
		return in_data >= limit ? OUTCOME_TIMEOUT_AFTER_354
					: OUTCOME_ENDED_AFTER_354;
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

int
outcome_from_name(const char *name, size_t len)
{
	for (int o = 0; o < OUTCOME__COUNT; o++)
		if (strlen(outcomes[o].name) == len &&
		    memcmp(outcomes[o].name, name, len) == 0)
			return o;
	return -1;
}

enum outcome_scope
outcome_scope(enum outcome o)
{
	return (unsigned)o < OUTCOME__COUNT ? outcomes[o].scope : OUTCOME_LOG;
}

const char *
outcome_explain(enum outcome o)
{
	if ((unsigned)o >= OUTCOME__COUNT)
		return "";
	return outcomes[o].seen ? outcomes[o].seen : outcomes[o].verdict;
}

const char *
outcome_verdict_text(enum outcome o)
{
	if ((unsigned)o >= OUTCOME__COUNT)
		return "";
	return outcomes[o].verdict ? outcomes[o].verdict : outcomes[o].seen;
}

void
outcome_reply(enum outcome o, const struct txn *t, struct implied_reply *r)
{
	memset(r, 0, sizeof *r);
	if ((unsigned)o >= OUTCOME__COUNT)
		return;
	if (o == OUTCOME_NO_VALID_RECIPIENTS && t != NULL && t->rejects_kept > 0) {
		/* Only the enhanced code reaches a milter; its first digit
		 * is the class of the 3-digit code the client got. */
		const char *status = t->rejects[0].status;
		if (status[0] == '4' || status[0] == '5') {
			r->class_digit = status[0];
			text_copy(r->enhanced, sizeof r->enhanced, status);
		}
		return;
	}
	r->code = outcomes[o].code;
	if (r->code > 0)
		r->class_digit = (char)('0' + r->code / 100);
	text_copy(r->enhanced, sizeof r->enhanced, outcomes[o].enhanced);
}

bool
implied_reply_empty(const struct implied_reply *r)
{
	return r->code <= 0 && r->class_digit == 0 && r->enhanced[0] == '\0';
}

void
implied_reply_format(const struct implied_reply *r, struct sbuf *sb)
{
	if (implied_reply_empty(r))
		return;
	bool any = true;

	if (r->code > 0)
		sbuf_printf(sb, "%d", r->code);
	else if (r->class_digit != 0)
		sbuf_printf(sb, "%cxx", r->class_digit);
	else
		any = false;
	if (r->enhanced[0] != '\0')
		sbuf_printf(sb, "%s%s", any ? " " : "", r->enhanced);
}
