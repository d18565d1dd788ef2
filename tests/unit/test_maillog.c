/*
 * maillog.c as a table: a line, and what its event must say, written as
 * one canonical string (describe() below) so a row reads as the spec.
 * The Postfix and smtptrace lines are real (tests/data/postfix-3.7/ and
 * tests/data/verdicts/run-*: Postfix 3.7.11 on the test instance); the
 * rows marked "prefix" are the same lines under the other syslog
 * prefixes (classic with a space-padded day, RFC 3339, none). The
 * Sendmail lines are real too (tests/data/sendmail-8.17/: Debian 12's
 * Sendmail 8.17.1.9 at LogLevel 9), but for those marked "source".
 */
#include <stdlib.h>

#include "maillog.h"
#include "tests.h"

static void
put_text(struct sbuf *sb, const char *key, const struct maillog_text *t)
{
	if (t->s != NULL)
		sbuf_printf(sb, " %s=%.*s", key, (int)t->len, t->s);
}

static void
describe_txn(const struct maillog_event *ev, struct sbuf *sb)
{
	const struct maillog_txn *t = &ev->txn;

	/* the outcome by name: "(unknown)" when the table has no such name */
	const char *known = t->outcome < 0 ? "(unknown)" :
			    strcmp(outcome_name((enum outcome)t->outcome), t->outcome_name) == 0 ?
			    "" : "(mismatch)";
	sbuf_printf(sb, "txn qid=%s session=%s txn=%lld client=%s from=%s outcome=%s%s"
		    " upload=%lld in_data=%lld stalled=%d rcpt=%lld/%lld", ev->queue_id,
		    t->session, t->txn, t->client, t->from, t->outcome_name, known,
		    t->upload_ms, t->in_data_ms, t->stalled, t->rcpt, t->rcpt_rejected);
	if (t->reply[0])
		sbuf_printf(sb, " reply=%s/%d/%s", t->reply, t->reply_code, t->reply_enhanced);
	if (t->rejects[0])
		sbuf_printf(sb, " rejects=%s", t->rejects);
}

static void
describe_decision(const struct maillog_event *ev, struct sbuf *sb)
{
	sbuf_printf(sb, "decision qid=%s pid=%ld %s%s%s code=%d enh=%s", ev->queue_id,
		    ev->pid, outcome_name(ev->outcome), ev->during_upload ? " upload" : "",
		    ev->by_pid ? " by-pid" : "", ev->code, ev->enhanced);
	if (ev->reply[0])
		sbuf_printf(sb, " reply=%s", ev->reply);
	if (ev->bytes >= 0)
		sbuf_printf(sb, " bytes=%lld", ev->bytes);
	if (ev->client_addr[0])
		sbuf_printf(sb, " addr=%s:%ld", ev->client_addr, ev->client_port);
	put_text(sb, "sender", &ev->sender);
}

/* The event as one string: the kind, then the fields that kind carries. */
static void
describe(const struct maillog_event *ev, struct sbuf *sb)
{
	switch (ev->kind) {
	case MAILLOG_OTHER:
		sbuf_puts(sb, "other");
		break;
	case MAILLOG_TXN:
		describe_txn(ev, sb);
		break;
	case MAILLOG_CLIENT:
		sbuf_printf(sb, "client qid=%s pid=%ld addr=%s:%ld", ev->queue_id, ev->pid,
			    ev->client_addr, ev->client_port);
		break;
	case MAILLOG_DECISION:
		describe_decision(ev, sb);
		break;
	case MAILLOG_DELIVERY:
		sbuf_printf(sb, "delivery qid=%s", ev->queue_id);
		put_text(sb, "status", &ev->status);
		put_text(sb, "dsn", &ev->dsn);
		put_text(sb, "relay", &ev->relay);
		if (ev->proves_queued)	/* Sendmail: the line decides, too */
			sbuf_printf(sb, " queued %s code=%d enh=%s reply=%s",
				    outcome_name(ev->outcome), ev->code, ev->enhanced, ev->reply);
		break;
	case MAILLOG_REMOVED:
		sbuf_printf(sb, "removed qid=%s", ev->queue_id);
		break;
	case MAILLOG_SESSION_END:
		sbuf_printf(sb, "end pid=%ld", ev->pid);
		break;
	case MAILLOG_TXN_END:
		sbuf_printf(sb, "txn-end qid=%s rcpts=%lld", ev->queue_id, ev->rcpts);
		break;
	}
}

struct row {
	const char *line;
	const char *want;
};

#define PF "Dec 01 22:25:49 mx postfix/"

static const struct row rows[] = {
	/* Postfix, postlogd's format */
	{ PF "smtpd[7384]: C99C5A72011: client=unknown[127.0.0.1]:52156",
	  "client qid=C99C5A72011 pid=7384 addr=127.0.0.1:52156" },
	{ PF "smtpd[7384]: warning: C99C5A72011: queue file size limit exceeded",
	  "decision qid=C99C5A72011 pid=7384 refused-after-354 upload code=552 enh=5.3.4 "
	  "reply=552 5.3.4 Error: message file too big" },
	{ PF "cleanup[7382]: warning: C99C5A72011: queue file size limit exceeded",
	  "decision qid=C99C5A72011 pid=7382 refused-after-354 upload code=552 enh=5.3.4 "
	  "reply=552 5.3.4 Error: message file too big" },
	{ PF "cleanup[7382]: warning: mail_stream_cleanup: close error", "other" },
	{ PF "cleanup[7382]: warning: 4ABC12DEF: write queue file: No space left on device",
	  "decision qid=4ABC12DEF pid=7382 refused-after-354 upload code=451 enh=4.3.0 "
	  "reply=451 4.3.0 Error: queue file write error" },
	{ PF "cleanup[7382]: CA4D7A72011: reject: header Subject: REJECTME now from unknown[127.0.0.1]:52170; from=<hdr@example.test> to=<b@example.test> proto=ESMTP helo=<hdr.test>: 5.7.1 spam header here",
	  "decision qid=CA4D7A72011 pid=7382 refused-after-354 upload code=-1 enh=5.7.1 "
	  "reply=5xx 5.7.1 spam header here" },
	{ PF "cleanup[7382]: CAE59A72011: reject: body BODYREJECT two from unknown[127.0.0.1]:52174; from=<body@example.test> to=<b@example.test> proto=ESMTP helo=<body.test>: 5.7.1 body spam here",
	  "decision qid=CAE59A72011 pid=7382 refused-after-354 upload code=-1 enh=5.7.1 "
	  "reply=5xx 5.7.1 body spam here" },
	{ PF "cleanup[7382]: CB8AEA72011: discard: header Subject: DISCARDME from unknown[127.0.0.1]:52188; from=<disc@example.test> to=<b@example.test> proto=ESMTP helo=<disc.test>",
	  "decision qid=CB8AEA72011 pid=7382 discarded upload code=250 enh=2.0.0 "
	  "reply=250 2.0.0 Ok: queued as CB8AEA72011" },
	{ PF "smtpd[7384]: CC290A72011: reject: DATA from unknown[127.0.0.1]:52200: 554 5.7.1 <datareject@example.test>: Sender address rejected: no data for you; from=<datareject@example.test> to=<b@example.test> proto=ESMTP helo=<data.test>",
	  "decision qid=CC290A72011 pid=7384 refused-at-data code=554 enh=5.7.1 "
	  "reply=554 5.7.1 <datareject@example.test>: Sender address rejected: no data for you "
	  "addr=127.0.0.1:52200 sender=datareject@example.test" },
	{ PF "cleanup[7382]: CCBE0A72011: milter-reject: END-OF-MESSAGE from unknown[127.0.0.1]: 5.7.1 Rejected by test milter; from=<after@example.test> to=<b@example.test> proto=ESMTP helo=<after.test>",
	  "decision qid=CCBE0A72011 pid=7382 refused-after-354 code=-1 enh=5.7.1 "
	  "reply=5xx 5.7.1 Rejected by test milter addr=127.0.0.1:-1 sender=after@example.test" },
	{ PF "cleanup[7382]: CDA95A72011: milter-reject: END-OF-MESSAGE from unknown[127.0.0.1]: 4.7.1 Deferred by test milter; from=<aftertemp@example.test> to=<b@example.test> proto=ESMTP helo=<aftert.test>",
	  "decision qid=CDA95A72011 pid=7382 refused-after-354 code=-1 enh=4.7.1 "
	  "reply=4xx 4.7.1 Deferred by test milter addr=127.0.0.1:-1 sender=aftertemp@example.test" },
	{ PF "cleanup[7382]: CE715A72011: milter-discard: END-OF-MESSAGE from unknown[127.0.0.1]: milter triggers DISCARD action; from=<afterdisc@example.test> to=<b@example.test> proto=ESMTP helo=<afterd.test>",
	  "decision qid=CE715A72011 pid=7382 discarded code=250 enh=2.0.0 "
	  "reply=250 2.0.0 Ok: queued as CE715A72011" },
	{ PF "smtpd[7380]: lost connection after DATA (1495 bytes) from unknown[127.0.0.1]:60376",
	  "decision qid= pid=7380 abandoned-after-354 by-pid code=-1 enh= bytes=1495 "
	  "addr=127.0.0.1:60376" },
	{ PF "smtpd[7380]: timeout after DATA (1493 bytes) from unknown[127.0.0.1]:60380",
	  "decision qid= pid=7380 timeout-after-354 by-pid code=421 enh=4.4.2 "
	  "reply=421 4.4.2 Error: timeout exceeded bytes=1493 "
	  "addr=127.0.0.1:60380" },
	{ PF "smtpd[7380]: lost connection after END-OF-MESSAGE from unknown[127.0.0.1]:60376",
	  "other" },
	{ PF "smtpd[7380]: lost connection after RCPT from unknown[127.0.0.1]:60376", "other" },
	{ PF "smtpd[7380]: disconnect from unknown[127.0.0.1]:60376 ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4",
	  "end pid=7380" },
	{ PF "smtpd[7380]: connect from unknown[127.0.0.1]:60376", "other" },
	{ PF "qmgr[7378]: 16F1CA72374: from=<normal@example.test>, size=359, nrcpt=1 (queue active)",
	  "decision qid=16F1CA72374 pid=7378 accepted code=250 enh=2.0.0 "
	  "reply=250 2.0.0 Ok: queued as 16F1CA72374" },
	{ PF "smtp[7383]: 16F1CA72374: to=<b@example.test>, relay=127.0.0.1[127.0.0.1]:41219, delay=0.02, delays=0.01/0.01/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
	  "delivery qid=16F1CA72374 status=sent dsn=2.0.0 relay=127.0.0.1[127.0.0.1]:41219" },
	{ PF "qmgr[7378]: 16F1CA72374: removed", "removed qid=16F1CA72374" },
	{ PF "cleanup[7382]: 16F1CA72374: message-id=<20261201222543.16F1CA72374@mx.test>", "other" },
	{ PF "smtpd[7384]: NOQUEUE: reject: RCPT from unknown[127.0.0.1]:52244: 554 5.7.1 <blocked@example.test>: Recipient address rejected: Access denied; from=<norcpt@example.test> to=<blocked@example.test> proto=ESMTP helo=<norcpt.test>",
	  "other" },
	{ PF "anvil[7390]: statistics: max connection rate 1/60s for (smtp:127.0.0.1) at Dec  1 22:25:49",
	  "other" },
	{ "Dec 01 22:25:43 mx postfix/master[7376]: daemon started -- version 3.7.11, configuration /tmp/x/etc",
	  "other" },
	/* prefix: the same lines under syslog's other prefixes */
	{ "Dec  1 22:25:44 mx postfix/smtpd[7380]: 94462A72011: client=unknown[127.0.0.1]",
	  "client qid=94462A72011 pid=7380 addr=127.0.0.1:-1" },
	{ "2026-12-01T22:25:44.123456+00:00 mx postfix/smtpd[7380]: lost connection after DATA (1495 bytes) from unknown[127.0.0.1]",
	  "decision qid= pid=7380 abandoned-after-354 by-pid code=-1 enh= bytes=1495 addr=127.0.0.1:-1" },
	{ "2026-12-01T22:25:44Z mx postfix/submission/smtpd[77]: disconnect from x[192.0.2.1]",
	  "end pid=77" },
	{ "Dec  1 22:25:44 mx postfix/qmgr[7378]: 16F1CA72374: removed",
	  "removed qid=16F1CA72374" },
	/* smtptrace, -f (no prefix), key=value; the ident may be anything */
	{ "smtptrace[7179]: C6680A72011: kind=txn session=cc2f428e4554ffad txn=1 client=unknown[127.0.0.1]:60380 helo=stall.test from=<stall@example.test> rcpt=1 rcpt_rejected=0 outcome=timeout-after-354 reply=\"421 4.4.2\" reply_explain=\"421 4.4.2: transient failure\" timeline=connect:0,helo:1,mail:1,rcpt:3,data:7,abort:5013 in_data_ms=5006 duration_ms=5012 stalled=yes stall_warnings=1 explain=\"the client got 354\"",
	  "txn qid=C6680A72011 session=cc2f428e4554ffad txn=1 client=unknown[127.0.0.1]:60380 "
	  "from=<stall@example.test> outcome=timeout-after-354 upload=-1 in_data=5006 stalled=1 "
	  "rcpt=1/0 reply=421 4.4.2/421/4.4.2" },
	{ "trace2[5]: NOQUEUE: kind=txn session=d06b150bca57db1d txn=1 client=unknown[127.0.0.1]:52244 helo=norcpt.test from=<norcpt@example.test> rcpt=0 rcpt_rejected=2 rejects=\"<blocked@example.test> 5.7.1 Recipient address rejected: Access denied; <blocked2@example.test> 5.7.1 Recipient address rejected: Access denied\" outcome=no-valid-recipients reply=\"5xx 5.7.1\" duration_ms=1",
	  "txn qid= session=d06b150bca57db1d txn=1 client=unknown[127.0.0.1]:52244 "
	  "from=<norcpt@example.test> outcome=no-valid-recipients upload=-1 in_data=-1 stalled=0 "
	  "rcpt=0/2 reply=5xx 5.7.1/-1/5.7.1 rejects=<blocked@example.test> 5.7.1 Recipient "
	  "address rejected: Access denied; <blocked2@example.test> 5.7.1 Recipient address "
	  "rejected: Access denied" },
	/* through syslog */
	{ "Dec  1 22:21:29 mx smtptrace[99]: 16F1CA72374: kind=txn session=e4572e2a74e7a353 txn=1 client=unknown[127.0.0.1]:60356 from=<normal@example.test> rcpt=1 rcpt_rejected=0 outcome=accepted upload_ms=1",
	  "txn qid=16F1CA72374 session=e4572e2a74e7a353 txn=1 client=unknown[127.0.0.1]:60356 "
	  "from=<normal@example.test> outcome=accepted upload=1 in_data=-1 stalled=0 rcpt=1/0" },
	{ "smtptrace[7179]: NOQUEUE: kind=conn session=e4572e2a74e7a353 client=unknown[127.0.0.1]:60356 txns=1",
	  "other" },
	{ "smtptrace[7179]: 4ABC: kind=stall session=e4572e2a74e7a353 txn=1 in_data_ms=30000 warning=1",
	  "other" },
	/* JSON */
	{ "smtptrace[10005]: {\"queue_id\":\"DC3ABA7269A\",\"kind\":\"txn\",\"session\":\"76892a4ec91d1779\",\"txn\":1,\"client\":\"unknown[127.0.0.1]:53276\",\"helo\":\"normal.test\",\"from\":\"<normal@example.test>\",\"rcpt\":1,\"rcpt_rejected\":0,\"outcome\":\"accepted\",\"timeline\":{\"connect\":0,\"helo\":0,\"eom\":13},\"upload_ms\":1,\"headers\":5,\"explain\":\"x, \\\"y\\\" {z}\"}",
	  "txn qid=DC3ABA7269A session=76892a4ec91d1779 txn=1 client=unknown[127.0.0.1]:53276 "
	  "from=<normal@example.test> outcome=accepted upload=1 in_data=-1 stalled=0 rcpt=1/0" },
	{ "2026-12-01T22:21:29+00:00 mx st[1]: {\"queue_id\":null,\"kind\":\"txn\",\"session\":\"s1\",\"txn\":2,\"client\":\"c\",\"from\":\"<>\",\"outcome\":\"abandoned-after-354\",\"stalled\":\"yes\",\"in_data_ms\":7}",
	  "txn qid= session=s1 txn=2 client=c from=<> outcome=abandoned-after-354 upload=-1 "
	  "in_data=7 stalled=1 rcpt=-1/-1" },
	{ "smtptrace[1]: {\"queue_id\":null,\"kind\":\"conn\",\"session\":\"s1\"}", "other" },
	/* an outcome name this build does not know */
	{ "smtptrace[1]: 4ABCDE: kind=txn session=s txn=3 outcome=eaten-by-grue",
	  "txn qid=4ABCDE session=s txn=3 client= from= outcome=eaten-by-grue(unknown) upload=-1 "
	  "in_data=-1 stalled=0 rcpt=-1/-1" },
	/* not the record: "kind=txn" elsewhere in a Postfix line */
	{ PF "smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 550 5.1.1 <kind=txn>: no; from=<kind=txn> to=<a> proto=SMTP helo=<h>",
	  "other" },
	{ "", "other" },
	{ "garbage without structure", "other" },
	{ "Dec  1 22:21:29 mx", "other" },
};

#define SM "Dec  1 23:10:33 mx sm-mta["
#define QUEUED(q) " queued accepted code=250 enh=2.0.0 reply=250 2.0.0 " q \
		  " Message accepted for delivery"

static const struct row sendmail_rows[] = {
	/* a delivery attempt (mailer=) proves the message was queued */
	{ SM "3594]: 6B1NAOS3003592: to=<b@example.test>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=31218, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (Ok)",
	  "delivery qid=6B1NAOS3003592 status=Sent dsn=2.0.0 relay=[127.0.0.1] [127.0.0.1]"
	  QUEUED("6B1NAOS3003592") },
	/* source: a deferred delivery, the message queued all the same */
	{ SM "3594]: 6B1NAOS3003592: to=<b@example.test>,<c@example.test>, ctladdr=<a@example.test> (0/0), delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=31218, relay=[127.0.0.1], dsn=4.0.0, stat=Deferred: Connection refused by [127.0.0.1]",
	  "delivery qid=6B1NAOS3003592 status=Deferred dsn=4.0.0 relay=[127.0.0.1]"
	  QUEUED("6B1NAOS3003592") },
	/* the recipients of a refused message: no mailer=, no delivery */
	{ SM "3657]: 6B1NAXFf003657: to=<b@example.test>, delay=00:00:00, pri=31185, stat=Rejected by test milter",
	  "other" },
	{ SM "3657]: 6B1NAXFf003657: Milter: data, reject=550 5.7.1 Rejected by test milter",
	  "decision qid=6B1NAXFf003657 pid=3657 refused-after-354 code=550 enh=5.7.1 "
	  "reply=550 5.7.1 Rejected by test milter" },
	{ SM "3663]: 6B1NAXUC003663: Milter: data, reject=451 4.7.1 Deferred by test milter",
	  "decision qid=6B1NAXUC003663 pid=3663 refused-after-354 code=451 enh=4.7.1 "
	  "reply=451 4.7.1 Deferred by test milter" },
	{ SM "3666]: 6B1NAXMu003666: Milter: data, discard",
	  "decision qid=6B1NAXMu003666 pid=3666 discarded code=250 enh=2.0.0 "
	  "reply=250 2.0.0 6B1NAXMu003666 Message accepted for delivery" },
	{ SM "3666]: 6B1NAXMu003666: discarded",
	  "decision qid=6B1NAXMu003666 pid=3666 discarded code=250 enh=2.0.0 "
	  "reply=250 2.0.0 6B1NAXMu003666 Message accepted for delivery" },
	/* source: a milter refusing the DATA command, and a recipient */
	{ SM "3666]: 6B1NAXMu003666: Milter: cmd=data, reject=550 5.7.1 Command rejected",
	  "decision qid=6B1NAXMu003666 pid=3666 refused-at-data code=550 enh=5.7.1 "
	  "reply=550 5.7.1 Command rejected" },
	{ SM "3666]: 6B1NAXMu003666: Milter: to=<b@example.test>, reject=550 5.7.1 Command rejected",
	  "decision qid=6B1NAXMu003666 pid=3666 no-valid-recipients upload code=550 enh=5.7.1 "
	  "reply=550 5.7.1 Command rejected" },
	{ SM "3598]: 6B1NAO7x003598: Milter (smtptrace) delete: header X-SMTP-Trace: forged by the client",
	  "other" },
	{ SM "3654]: 6B1NAXTo003654: message size (39295) exceeds maximum (20000)",
	  "decision qid=6B1NAXTo003654 pid=3654 refused-after-354 code=552 enh=5.2.3 "
	  "reply=552 5.2.3 Message exceeds maximum fixed size (20000) bytes=39295" },
	{ SM "3609]: 6B1NAQZr003609: collect: premature EOM: unexpected close",
	  "decision qid=6B1NAQZr003609 pid=3609 abandoned-after-354 code=-1 enh=" },
	{ SM "3609]: 6B1NAQZr003609: collect: relay=localhost, from=<a@example.test>, info=unexpected close",
	  "decision qid=6B1NAQZr003609 pid=3609 abandoned-after-354 code=-1 enh=" },
	{ SM "3612]: 6B1NARkO003612: SYSERR(root): collect: relay=localhost, from=<a@example.test>, info=read timeout",
	  "decision qid=6B1NARkO003612 pid=3612 timeout-after-354 code=421 enh=4.4.1 "
	  "reply=421 4.4.1 collect: relay=localhost, from=<a@example.test>, info=read timeout" },
	/* source: an older version's data timeout */
	{ SM "3612]: 6B1NARkO003612: timeout waiting for input from localhost during message collect",
	  "decision qid=6B1NARkO003612 pid=3612 timeout-after-354 code=421 enh=4.4.1 reply=421 4.4.1" },
	/* refused recipients: tentative (no valid recipients if none is accepted) */
	{ SM "3639]: 6B1NAW8c003639: ruleset=check_rcpt, arg1=<blocked@example.test>, relay=localhost [127.0.0.1], reject=550 5.2.1 <blocked@example.test>... Mailbox disabled for this recipient",
	  "decision qid=6B1NAW8c003639 pid=3639 no-valid-recipients upload code=550 enh=5.2.1 "
	  "reply=550 5.2.1 <blocked@example.test>... Mailbox disabled for this recipient" },
	{ SM "3636]: 6B1NAWYf003636: <nouser@mx.test>... User unknown",
	  "decision qid=6B1NAWYf003636 pid=3636 no-valid-recipients upload code=550 enh=5.1.1 "
	  "reply=550 5.1.1 <nouser@mx.test>... User unknown" },
	/* source: check_data refusing DATA */
	{ SM "3639]: 6B1NAW8c003639: ruleset=check_data, arg1=1, relay=localhost [127.0.0.1], reject=550 5.7.1 No data today",
	  "decision qid=6B1NAW8c003639 pid=3639 refused-at-data code=550 enh=5.7.1 "
	  "reply=550 5.7.1 No data today" },
	{ SM "3639]: 6B1NAW8c003639: ruleset=check_mail, arg1=<x@bad.test>, relay=localhost [127.0.0.1], reject=553 5.1.8 <x@bad.test>... Domain of sender address x@bad.test does not exist",
	  "other" },
	/* from=: the end of a transaction only when it had no message */
	{ SM "3639]: 6B1NAW8c003639: from=<a@example.test>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
	  "txn-end qid=6B1NAW8c003639 rcpts=0" },
	{ SM "3624]: 6B1NAWn5003624: from=<first@example.test>, size=0, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
	  "txn-end qid=6B1NAWn5003624 rcpts=1" },
	{ SM "3609]: 6B1NAQZr003609: from=<a@example.test>, size=608, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
	  "other" },
	/* the sender and the message-id are the client's: a line that says
	 * two things says nothing */
	{ SM "3609]: 6B1NAQZr003609: from=<\"x, size=0, class=0, nrcpts=0, \"@a.test>, size=608, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
	  "other" },
	{ SM "3609]: 6B1NAQZr003609: from=<a@example.test>, size=608, class=0, nrcpts=1, msgid=<x, size=0, class=0, nrcpts=0, @a>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
	  "other" },
	{ SM "3609]: 6B1NAQZr003609: from=<a@example.test>, size=0, class=0, nrcpts=0, msgid=<x, size=0, class=0, nrcpts=0, @a>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
	  "txn-end qid=6B1NAQZr003609 rcpts=0" },
	{ SM "3591]: starting daemon (8.17.1.9): SMTP", "other" },
	{ "Dec  1 23:10:24 mx sendmail[3590]: alias database /tmp/x/aliases rebuilt by root", "other" },
	{ SM "4157]: 6B1N0JF3014157: localhost [127.0.0.1] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA",
	  "other" },
	/* source: logged while waiting for the next command: it decides nothing */
	{ SM "4157]: 6B1N0JF3014157: lost input channel from localhost [127.0.0.1] to MTA after rcpt",
	  "other" },
	/* another program's line in Sendmail's words */
	{ "Dec  1 23:10:33 mx myapp[7]: 6B1NAXFf003657: Milter: data, reject=550 5.7.1 x", "other" },
	/* through Postfix's postlogd and RFC 3339 prefixes */
	{ "2026-12-01T23:10:33.123456+00:00 mx sm-mta[3657]: 6B1NAXFf003657: Milter: data, reject=550 5.7.1 Rejected by test milter",
	  "decision qid=6B1NAXFf003657 pid=3657 refused-after-354 code=550 enh=5.7.1 "
	  "reply=550 5.7.1 Rejected by test milter" },
	/* smtptrace's own line from the same run */
	{ "smtptrace[3518]: 6B1NAW8c003639: kind=txn session=7c65605c78ea00cb txn=1 client=localhost[127.0.0.1]:49188 helo=access-3502-16.client.test from=<a@example.test> rcpt=0 rcpt_rejected=0 outcome=aborted-before-data timeline=connect:0,helo:0,mail:1,abort:2 duration_ms=1",
	  "txn qid=6B1NAW8c003639 session=7c65605c78ea00cb txn=1 client=localhost[127.0.0.1]:49188 "
	  "from=<a@example.test> outcome=aborted-before-data upload=-1 in_data=-1 stalled=0 rcpt=0/0" },
};

static void
check_rows(const struct row *table, size_t n)
{
	static struct maillog_event ev;	/* large: not on the stack */
	char got[4096];
	struct sbuf sb;

	for (size_t i = 0; i < n; i++) {
		sbuf_init(&sb, got, sizeof got);
		maillog_classify(table[i].line, strlen(table[i].line), &ev);
		describe(&ev, &sb);
		if (strcmp(got, table[i].want) != 0)
			fprintf(stderr, "\nrow %zu: %.100s\n", i, table[i].line);
		EXPECT_STR(got, table[i].want);
	}
}

static void
test_table(void)
{
	check_rows(rows, sizeof rows / sizeof rows[0]);
}

static void
test_sendmail_table(void)
{
	check_rows(sendmail_rows, sizeof sendmail_rows / sizeof sendmail_rows[0]);
}

/* Only len bytes are read: what follows is not part of the line. */
static void
test_length_bound(void)
{
	static struct maillog_event ev;
	const char *buf = PF "qmgr[7]: 16F1CA72374: removedXYZ and more";
	size_t len = strlen(PF "qmgr[7]: 16F1CA72374: removed");

	EXPECT_INT(maillog_classify(buf, len, &ev), MAILLOG_REMOVED);
	EXPECT_INT(maillog_classify(buf, len + 3, &ev), MAILLOG_OTHER);
	const char *kv = "smtptrace[1]: 4ABCDE: kind=txn session=abc txn=1 from=<a@b>GARBAGE";
	EXPECT_INT(maillog_classify(kv, strlen(kv) - 7, &ev), MAILLOG_TXN);
	EXPECT_STR(ev.txn.from, "<a@b>");
	/* a quoted value whose closing quote lies past the end */
	const char *cut = "smtptrace[1]: 4ABCDE: kind=txn from=\"<a@b> and\" session=zz";
	EXPECT_INT(maillog_classify(cut, strlen("smtptrace[1]: 4ABCDE: kind=txn from=\"<a@b>"),
				    &ev), MAILLOG_TXN);
	EXPECT_STR(ev.txn.from, "<a@b>");
	EXPECT_STR(ev.txn.session, "");
}

/* Escaped values come back as the bytes the milter was given. */
static void
test_hostile_values(void)
{
	static struct maillog_event ev;
	const char *kv = "smtptrace[1]: 4ABCDE: kind=txn session=s txn=1 "
			 "from=\"<a\\\"b\\\\c\\xc3\\xa9\\r\\n\\x01>\" client=\"x y[1.2.3.4]:5\" "
			 "outcome=accepted";
	const char *json = "smtptrace[1]: {\"queue_id\":\"4ABCDE\",\"kind\":\"txn\","
			   "\"from\":\"<a\\\"b\\\\c\\u00c3\\u00a9\\r\\n\\u0001\\u20ac>\","
			   "\"outcome\":\"accepted\"}";

	EXPECT_INT(maillog_classify(kv, strlen(kv), &ev), MAILLOG_TXN);
	EXPECT_STR(ev.txn.from, "<a\"b\\c\xc3\xa9\r\n\x01>");
	EXPECT_STR(ev.txn.client, "x y[1.2.3.4]:5");
	EXPECT_INT(ev.txn.outcome, OUTCOME_ACCEPTED);
	EXPECT_INT(maillog_classify(json, strlen(json), &ev), MAILLOG_TXN);
	EXPECT_STR(ev.txn.from, "<a\"b\\c\xc3\xa9\r\n\x01\xe2\x82\xac>");
	EXPECT_STR(ev.queue_id, "4ABCDE");
}

/* Values longer than their caps are cut with "..."; fields after them still count. */
static void
test_long_values(void)
{
	static struct maillog_event ev;
	static char line[200 * 1024];
	struct sbuf sb;

	sbuf_init(&sb, line, sizeof line);
	sbuf_puts(&sb, "smtptrace[1]: 4ABCDE: kind=txn session=s from=\"<");
	for (int i = 0; i < 100 * 1024; i++)
		sbuf_putc(&sb, i % 2 ? 'a' : '\\');	/* "\a" escapes: decoded as 'a' */
	sbuf_puts(&sb, ">\" rcpt=3 outcome=accepted");
	CU_ASSERT_FALSE_FATAL(sb.overflow);
	EXPECT_INT(maillog_classify(line, sb.len, &ev), MAILLOG_TXN);
	EXPECT_INT(strlen(ev.txn.from), MAILLOG_FROM_MAX - 1);
	CU_ASSERT(strcmp(ev.txn.from + MAILLOG_FROM_MAX - 4, "...") == 0);
	EXPECT_INT(ev.txn.rcpt, 3);
	EXPECT_INT(ev.txn.outcome, OUTCOME_ACCEPTED);

	/* a Postfix reject with a 100 KiB header text: the reply still found */
	sbuf_init(&sb, line, sizeof line);
	sbuf_puts(&sb, PF "cleanup[2]: 4ABCDE: reject: header Subject: ");
	for (int i = 0; i < 100 * 1024; i++)
		sbuf_putc(&sb, i % 50 ? 'x' : ' ');
	sbuf_puts(&sb, " from x[192.0.2.1]; from=<a> to=<b> proto=ESMTP helo=<h>: 5.7.1 no");
	EXPECT_INT(maillog_classify(line, sb.len, &ev), MAILLOG_DECISION);
	EXPECT_STR(ev.reply, "5xx 5.7.1 no");
}

/* The client's text before the reply cannot pass for the reply. */
static void
test_reply_not_spoofed(void)
{
	static struct maillog_event ev;
	const char *l = PF "cleanup[2]: 4ABCDE: reject: header Subject: x>: 2.0.0 all fine from "
			"x[192.0.2.1]:5; from=<a> to=<b> proto=ESMTP helo=<h>: 4.0.0 fake>: 5.7.1 real";

	EXPECT_INT(maillog_classify(l, strlen(l), &ev), MAILLOG_DECISION);
	EXPECT_STR(ev.enhanced, "5.7.1");
	EXPECT_STR(ev.reply, "5xx 5.7.1 real");
}

int
suite_maillog(void)
{
	CU_pSuite s = CU_add_suite("maillog classifier", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "real lines to events", test_table) ||
	       !CU_add_test(s, "Sendmail's lines to events", test_sendmail_table) ||
	       !CU_add_test(s, "reads len bytes, no more", test_length_bound) ||
	       !CU_add_test(s, "escaped values decoded", test_hostile_values) ||
	       !CU_add_test(s, "long values capped", test_long_values) ||
	       !CU_add_test(s, "the reply is the MTA's, not the client's", test_reply_not_spoofed);
}
