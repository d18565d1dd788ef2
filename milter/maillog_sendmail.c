/*
 * NAME
 *	maillog_sendmail - Sendmail's log lines as maillog events
 * DESCRIPTION
 *	The Sendmail entry of maillog.c's table (see maillog.h). Claims the
 *	programs "sendmail" and "sm-*" (Debian starts the daemon with
 *	-L sm-mta). Sendmail writes the queue id on nearly every line of a
 *	transaction, and gives it to a milter from MAIL on ({i}), so every
 *	event here is keyed by queue id; none needs the pid.
 *
 *	The lines read, and what they prove (seen on Debian 12's Sendmail
 *	8.17.1.9 at its default LogLevel 9, tests/data/sendmail-8.17/; those
 *	marked "source" are from Sendmail's source, not seen):
 *	  QID: to=<R>,.., mailer=M, .., relay=H, dsn=X.Y.Z, stat=S (..)
 *	       a delivery attempt: the message was queued (Sendmail logs no
 *	       line when it queues) and answered "250 2.0.0 QID Message
 *	       accepted for delivery". A to= line without mailer= lists the
 *	       recipients of a refused message (stat= is the refusal's text):
 *	       the refusal's own line decides.
 *	  QID: Milter: data, reject=550 5.7.1 TEXT     refused after the dot
 *	  QID: Milter: data, discard  (and QID: discarded)  discarded, 250
 *	  QID: Milter: cmd=data, reject=CODE ..        refused at DATA (source)
 *	  QID: message size (N) exceeds maximum (M)    refused after the dot:
 *	       552 5.2.3 Message exceeds maximum fixed size (M)
 *	  QID: collect: premature EOM: unexpected close   abandoned after 354
 *	  QID: collect: relay=H, from=<S>, info=unexpected close   the same
 *	  QID: SYSERR(root): collect: relay=H, from=<S>, info=read timeout
 *	       the data timeout (Timeout.datablock): the client got "421 4.4.1"
 *	       and the rest of the line
 *	  QID: timeout waiting for input from H during message collect
 *	       a data timeout in older versions (source): 421 4.4.1
 *	  QID: ruleset=check_rcpt, arg1=<R>, relay=H, reject=550 5.2.1 TEXT
 *	  QID: <R>... User unknown                     550 5.1.1 (source)
 *	  QID: Milter: to=<R>, reject=CODE ..          (source)
 *	       a refused recipient: no valid recipients, if the transaction
 *	       ends with none accepted (during_upload: the join waits for
 *	       the from= line below)
 *	  QID: ruleset=check_data, ..., reject=CODE .. refused at DATA (source)
 *	  QID: from=<S>, size=0, class=C, nrcpts=N, ..
 *	       a transaction with no message is over (RSET, QUIT, no valid
 *	       recipients): nrcpts says how many recipients were accepted.
 *	       Sendmail writes this line for every transaction, but with a
 *	       message before the milters' and the size checks' verdict, so
 *	       then it proves nothing.
 *	Not read: "lost input channel from C to D after CMD" is logged while
 *	Sendmail waits for the next command (the message, if any, had its
 *	reply); "collect: relay=.." repeats "premature EOM".
 *
 *	Pure, like maillog.c.
 */
#include "maillog.h"

#include <ctype.h>
#include <string.h>

#include "sbuf.h"

bool
maillog_sendmail_claims(const struct maillog_prefix *px)
{
	if (px->prog == NULL)
		return false;
	return (px->prog_len == 8 && memcmp(px->prog, "sendmail", 8) == 0) ||
	       (px->prog_len > 3 && memcmp(px->prog, "sm-", 3) == 0);
}

/* The text of [p, end) as a reply the client got: "CODE ENH " and it. */
static void
reply_with_text(struct maillog_event *ev, int code, const char *enhanced,
		const char *p, const char *end)
{
	char text[MAILLOG_REPLY_TEXT_MAX];
	struct sbuf sb;

	sbuf_init(&sb, text, sizeof text);
	sbuf_putn(&sb, p, (size_t)(end - p));
	maillog_set_fixed_reply(ev, code, enhanced, text);
}

/* Sendmail's answer to a final dot it took: "250 2.0.0 QID Message accepted ..". */
static void
accepted_reply(struct maillog_event *ev)
{
	char text[MAILLOG_QID_MAX + 40];
	struct sbuf sb;

	sbuf_init(&sb, text, sizeof text);
	sbuf_printf(&sb, "%s Message accepted for delivery", ev->queue_id);
	maillog_set_fixed_reply(ev, 250, "2.0.0", text);
}

/* The value of ", KEY=" after p, up to stop (a character of stops) or end. */
static struct maillog_text
field_after(const char *p, const char *end, const char *key, const char *stops)
{
	struct maillog_text t = { NULL, 0 };
	const char *v = maillog_find(p, end, key);

	if (v == NULL)
		return t;
	v += strlen(key);
	const char *q = v;
	while (q < end && strchr(stops, *q) == NULL)
		q++;
	t.s = v;
	t.len = (size_t)(q - v);
	return t;
}

/* "to=<R>,.., mailer=M, ..": a delivery attempt, the proof it was queued. */
static void
sendmail_delivery(const char *p, const char *end, struct maillog_event *ev)
{
	const char *mailer = maillog_find(p, end, ", mailer=");

	if (mailer == NULL)
		return;		/* the recipients of a refused message */
	ev->kind = MAILLOG_DELIVERY;
	ev->relay = field_after(mailer, end, ", relay=", ",");
	ev->dsn = field_after(mailer, end, ", dsn=", ", ");
	ev->status = field_after(mailer, end, ", stat=", " :,");
	ev->proves_queued = true;
	ev->outcome = OUTCOME_ACCEPTED;
	accepted_reply(ev);
}

/*
 * "from=<S>, size=N, class=C, nrcpts=N, ..": the end of a transaction with no
 * message. The sender before these fields and the message-id after them are
 * the client's, and Sendmail logs them as given: every ", size=N, class=C,
 * nrcpts=N" in the line must say the same, or the line says nothing.
 */
static void
sendmail_from(const char *p, const char *end, struct maillog_event *ev)
{
	long long size = -1, rcpts = -1;

	for (const char *q = maillog_find(p, end, ", size="); q != NULL;
	     q = maillog_find(q + 1, end, ", size=")) {
		const char *stop;
		long long s = maillog_number(q + 7, end, &stop);
		if (s < 0 || !maillog_starts(stop, end, ", class="))
			continue;
		const char *n = stop + 8;
		if (n < end && *n == '-')
			n++;
		maillog_number(n, end, &n);
		if (!maillog_starts(n, end, ", nrcpts="))
			continue;
		long long r = maillog_number(n + 9, end, NULL);
		if (r < 0 || (size >= 0 && (s != size || r != rcpts)))
			return;
		size = s;
		rcpts = r;
	}
	if (size == 0) {
		ev->kind = MAILLOG_TXN_END;
		ev->rcpts = rcpts;
	}
}

/* "collect: .." after a SYSERR prefix or none: abandoned or timed out. */
static void
sendmail_collect(const char *p, const char *end, struct maillog_event *ev)
{
	const char *info = maillog_find(p, end, ", info=");

	if (maillog_starts(p, end, "collect: premature EOM: ")) {
		maillog_decision(ev, OUTCOME_ABANDONED_AFTER_354, false);
	} else if (info != NULL && maillog_starts(info + 7, end, "read timeout")) {
		maillog_decision(ev, OUTCOME_TIMEOUT_AFTER_354, false);
		reply_with_text(ev, 421, "4.4.1", p, end);
	} else if (info != NULL && (maillog_starts(info + 7, end, "unexpected close") ||
				    maillog_starts(info + 7, end, "I/O error"))) {
		maillog_decision(ev, OUTCOME_ABANDONED_AFTER_354, false);
	}
}

/* "ruleset=check_rcpt|check_data, arg1=.., reject=CODE ENH TEXT". */
static void
sendmail_ruleset(const char *p, const char *end, struct maillog_event *ev)
{
	const char *reject = maillog_find(p, end, ", reject=");
	enum outcome o;

	if (reject == NULL)
		return;
	if (maillog_starts(p, end, "ruleset=check_rcpt, "))
		o = OUTCOME_NO_VALID_RECIPIENTS;
	else if (maillog_starts(p, end, "ruleset=check_data, "))
		o = OUTCOME_REFUSED_AT_DATA;
	else
		return;
	maillog_decision(ev, o, o == OUTCOME_NO_VALID_RECIPIENTS);
	maillog_set_reply(reject + 9, end, ev);
}

/* "Milter: data, reject=..", "Milter: cmd=data, ..", "Milter: to=<R>, reject=..". */
static void
sendmail_milter(const char *p, const char *end, struct maillog_event *ev)
{
	const char *reject = maillog_find(p, end, ", reject=");

	if (maillog_starts(p, end, "data, discard") ||
	    maillog_starts(p, end, "cmd=data, discard")) {
		maillog_decision(ev, OUTCOME_DISCARDED, false);
		accepted_reply(ev);
		return;
	}
	if (reject == NULL)
		return;
	if (maillog_starts(p, end, "data, reject=")) {
		maillog_decision(ev, OUTCOME_REFUSED_AFTER_354, false);
	} else if (maillog_starts(p, end, "cmd=data, reject=")) {
		maillog_decision(ev, OUTCOME_REFUSED_AT_DATA, false);
	} else if (maillog_starts(p, end, "to=")) {
		maillog_decision(ev, OUTCOME_NO_VALID_RECIPIENTS, true);
	} else {
		return;
	}
	maillog_set_reply(reject + 9, end, ev);
}

/* "message size (N) exceeds maximum (M)": 552 5.2.3 (collect.c). */
static void
sendmail_size(const char *p, const char *end, struct maillog_event *ev)
{
	const char *max = maillog_find(p, end, ") exceeds maximum (");
	char text[64];
	struct sbuf sb;

	if (max == NULL)
		return;
	maillog_decision(ev, OUTCOME_REFUSED_AFTER_354, false);
	ev->bytes = maillog_number(p + 14, end, NULL);
	long long limit = maillog_number(max + 19, end, NULL);
	sbuf_init(&sb, text, sizeof text);
	sbuf_printf(&sb, "Message exceeds maximum fixed size (%lld)", limit);
	maillog_set_fixed_reply(ev, 552, "5.2.3", text);
}

/* After "QID: ". */
static void
sendmail_queue_line(const char *p, const char *end, struct maillog_event *ev)
{
	if (maillog_starts(p, end, "SYSERR(")) {
		const char *close = maillog_find(p, end, "): ");
		if (close == NULL)
			return;
		p = close + 3;
	}
	if (maillog_starts(p, end, "to=")) {
		sendmail_delivery(p, end, ev);
	} else if (maillog_starts(p, end, "from=")) {
		sendmail_from(p, end, ev);
	} else if (maillog_starts(p, end, "Milter: ")) {
		sendmail_milter(p + 8, end, ev);
	} else if (maillog_starts(p, end, "collect: ")) {
		sendmail_collect(p, end, ev);
	} else if (maillog_starts(p, end, "ruleset=")) {
		sendmail_ruleset(p, end, ev);
	} else if (maillog_starts(p, end, "message size (")) {
		sendmail_size(p, end, ev);
	} else if (end - p == 9 && memcmp(p, "discarded", 9) == 0) {
		maillog_decision(ev, OUTCOME_DISCARDED, false);
		accepted_reply(ev);
	} else if (maillog_starts(p, end, "timeout waiting for input from ") &&
		   end - p > 23 && memcmp(end - 23, " during message collect", 23) == 0) {
		static const char code[] = "421 4.4.1";	/* the text is not logged */
		maillog_decision(ev, OUTCOME_TIMEOUT_AFTER_354, false);
		maillog_set_reply(code, code + sizeof code - 1, ev);
	} else if (p < end && *p == '<' && end - p > 17 &&
		   memcmp(end - 17, ">... User unknown", 17) == 0) {
		maillog_decision(ev, OUTCOME_NO_VALID_RECIPIENTS, true);
		reply_with_text(ev, 550, "5.1.1", p, end);
	}
}

void
maillog_sendmail_classify(const struct maillog_prefix *px, struct maillog_event *ev)
{
	const char *p = px->msg, *end = px->end;
	size_t n = maillog_qid_len(p, end);

	if (n == 0)
		return;
	maillog_set_qid(ev, p, n);
	sendmail_queue_line(p + n + 2, end, ev);
}
