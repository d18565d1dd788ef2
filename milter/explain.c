/*
 * NAME
 *	smtptrace-explain - explain SMTP reply codes in plain words
 * SYNOPSIS
 *	smtptrace-explain [--json] CODE-OR-REPLY ...
 *	smtptrace-explain [--json] [-]            reply or log lines on stdin
 *	smtptrace-explain --log [--all] [--json]  annotate a mail log (a filter)
 *	smtptrace-explain --verdicts [--json] [--summary] [--window N] [FILE ...]
 *	                                          one verdict per smtptrace
 *	                                          transaction (verdict.c)
 * DESCRIPTION
 *	Arguments or stdin lines are replies ("550 5.1.1 <a@b>: User
 *	unknown"), bare codes ("354", "5.7.1"), or whole log lines; each gets
 *	one explanation. Continuation lines ("550-...") on stdin are joined
 *	with the line that ends the reply. --log copies a mail log through and
 *	adds, after each line carrying a 4xx/5xx code (any code with --all) or
 *	a "timeout/lost connection after STAGE", one explanation line; it
 *	streams in constant memory (a 64 KiB buffer; longer lines pass through
 *	in pieces). Exit: 0 explained, 1 some code unknown or none found
 *	(still explained by class), 2 usage, 3 read or write error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codes.h"
#include "escape.h"
#include "outcome.h"
#include "reply.h"
#include "sbuf.h"
#include "verdict.h"
#include "version.h"

/* one explanation: a 4 KiB input escaped to JSON (6 bytes a byte) and the texts */
#define OUT_MAX (64 * 1024)
#define READ_MAX (64 * 1024)

struct opts {
	bool json;
	bool log;
	bool all;
	bool verdicts;
	bool summary;
	bool window_given;
	unsigned long window;
};

/*
 * What a Postfix event line means. Where an event is one of the outcomes
 * (outcome.def), its sentence and implied reply come from there; the
 * others have their own words here.
 */
struct event_text {
	enum reply_event event;
	const char *stage;	/* NULL: any stage */
	int outcome;		/* an enum outcome, or -1: text, code, enhanced below */
	const char *text;
	int code;		/* the reply the client got; -1 none */
	const char *enhanced;
};

static const struct event_text events[] = {
	/* Postfix's line: its reply to a data timeout is 421 4.4.2 */
	{ REPLY_EVENT_TIMEOUT, "DATA", OUTCOME_TIMEOUT_AFTER_354, NULL, 421, "4.4.2" },
	{ REPLY_EVENT_TIMEOUT, "END-OF-MESSAGE", -1,
	  "the whole message was received but the client left before the server's reply came; usually a slow content filter or milter made the client give up. The client will send the message again.",
	  -1, NULL },
	{ REPLY_EVENT_TIMEOUT, NULL, -1,
	  "the client went silent in the middle of the SMTP dialogue for longer than the server's timeout; the server closed the session with 421 4.4.2.",
	  421, "4.4.2" },
	{ REPLY_EVENT_LOST, "DATA", OUTCOME_ABANDONED_AFTER_354, NULL, -1, NULL },
	{ REPLY_EVENT_LOST, "END-OF-MESSAGE", -1,
	  "the client sent the whole message, then disconnected before the server's reply; it may send the message again, and a duplicate may be delivered.",
	  -1, NULL },
	{ REPLY_EVENT_LOST, "CONNECT", -1,
	  "the client connected and left without a word: often a port scanner, a load balancer's health check, or a client that gave up on a slow greeting.",
	  -1, NULL },
	{ REPLY_EVENT_LOST, NULL, -1,
	  "the client disconnected in the middle of the SMTP dialogue without QUIT; nothing was delivered in that transaction.",
	  -1, NULL },
};

static const struct event_text *
event_text(const struct reply *r)
{
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
		if (events[i].event == r->event &&
		    (events[i].stage == NULL || strcmp(events[i].stage, r->stage) == 0))
			return &events[i];
	return NULL;
}

static const char *
event_sentence(const struct event_text *et)
{
	return et->outcome >= 0 ? outcome_verdict_text((enum outcome)et->outcome) : et->text;
}

/* The reply the event implies: code -1 and enhanced "" when none. */
static void
event_reply(const struct event_text *et, int *code, char *enh, size_t size)
{
	struct implied_reply ir;

	*code = et->code;
	text_copy(enh, size, et->enhanced ? et->enhanced : "");
	if (et->outcome < 0 || et->code > 0)
		return;
	outcome_reply((enum outcome)et->outcome, NULL, &ir);
	*code = ir.code > 0 ? ir.code : -1;
	text_copy(enh, size, ir.enhanced);
}

static const char *
event_name(enum reply_event e)
{
	return e == REPLY_EVENT_TIMEOUT ? "timeout after" :
	       e == REPLY_EVENT_LOST ? "lost connection after" : "";
}

/* The codes to explain: the line's own, or those the event implies. */
static bool
explain_codes(const struct reply *r, struct explanation *ex, bool *have)
{
	const struct event_text *et = event_text(r);
	int code = r->code;
	const char *enh = r->enhanced;

	char implied[16];
	int implied_code;

	if (code < 0 && enh[0] == '\0' && et != NULL) {
		event_reply(et, &implied_code, implied, sizeof implied);
		code = implied_code;
		enh = implied;
	}
	*have = code > 0 || enh[0] != '\0';
	return *have && codes_explain(code, enh, ex);
}

static void
put_json_entry(struct sbuf *sb, const char *key, const struct code_entry *e)
{
	sbuf_printf(sb, ",\"%s\":", key);
	if (e == NULL) {
		sbuf_puts(sb, "null");
		return;
	}
	sbuf_puts(sb, "{\"meaning\":");
	escape_json(sb, e->meaning, 1024);
	sbuf_puts(sb, ",\"who_acts\":");
	escape_json(sb, codes_actor_text(e->actor), 256);
	sbuf_puts(sb, ",\"advice\":");
	escape_json(sb, e->advice, 2048);
	sbuf_puts(sb, ",\"reference\":");
	escape_json(sb, e->reference, 256);
	sbuf_putc(sb, '}');
}

/* One explanation: for a person, or one JSON object. Returns known. */
static bool
explain(const char *input, const struct reply *r, const struct opts *o,
	struct sbuf *sb)
{
	struct explanation ex;
	const struct event_text *et = event_text(r);
	bool have, known = explain_codes(r, &ex, &have);
	/* an event with no code ("lost connection after DATA") is explained by
	 * its words: the same answer, and exit status, in both forms */
	bool explained = known || (et != NULL && !have);

	if (o->json) {
		sbuf_puts(sb, "{\"input\":");
		escape_json(sb, input, 4096);
		sbuf_puts(sb, r->code > 0 ? ",\"code\":" : ",\"code\":null");
		if (r->code > 0)
			sbuf_printf(sb, "%d", r->code);
		sbuf_puts(sb, ",\"enhanced\":");
		if (r->enhanced[0])
			escape_json(sb, r->enhanced, 16);
		else
			sbuf_puts(sb, "null");
		sbuf_puts(sb, ",\"event\":");
		if (et != NULL) {
			char ev[64];
			snprintf(ev, sizeof ev, "%s %s", event_name(r->event), r->stage);
			escape_json(sb, ev, sizeof ev);
		} else {
			sbuf_puts(sb, "null");
		}
		sbuf_puts(sb, ",\"class\":");
		if (have)
			escape_json(sb, codes_class_name(ex.class_digit), 64);
		else
			sbuf_puts(sb, "null");
		sbuf_puts(sb, ",\"meaning\":");
		char summary[1024];
		struct sbuf ssb;
		sbuf_init(&ssb, summary, sizeof summary);
		if (et != NULL)
			sbuf_puts(&ssb, event_sentence(et));
		else if (have)
			codes_summary(&ex, &ssb);
		if (summary[0])
			escape_json(sb, summary, sizeof summary);
		else
			sbuf_puts(sb, "null");
		sbuf_printf(sb, ",\"known\":%s,\"classes_conflict\":%s",
			    explained ? "true" : "false",
			    have && ex.conflict ? "true" : "false");
		if (have) {
			put_json_entry(sb, "basic", ex.basic_entry);
			put_json_entry(sb, "enhanced_detail", ex.detail_entry);
		}
		sbuf_puts(sb, "}\n");
		return explained;
	}
	if (et != NULL) {
		sbuf_printf(sb, "%s %s: ", event_name(r->event), r->stage);
		sbuf_puts(sb, event_sentence(et));
		sbuf_putc(sb, '\n');
	}
	if (have)
		codes_describe(&ex, sb, 80);
	else if (et == NULL)
		sbuf_puts(sb, "no SMTP reply code found\n");
	return explained;
}

/* Write what sb holds. Output stays buffered: the reader flushes before it waits. */
static void
emit(struct sbuf *sb)
{
	if (sb->overflow) {
		/* never half an explanation, nor half a JSON object */
		sbuf_init(sb, sb->buf, sb->cap);
		sbuf_puts(sb, "smtptrace-explain: explanation too long, left out\n");
	}
	if (sb->len > 0)
		fwrite(sb->buf, 1, sb->len, stdout);
	sbuf_init(sb, sb->buf, sb->cap);
}

/*
 * Standard input in lines, in constant memory: a line longer than the
 * buffer comes in pieces. stdout is flushed before every read(2), so the
 * output keeps up with slow input (tail -f) at the cost of one flush per
 * buffer of a file.
 */
struct reader {
	char   buf[READ_MAX + 1];
	size_t start, end;
	bool   eof, error, in_line;	/* in_line: pieces of one line so far */
};

struct piece {
	char  *text;		/* NUL-terminated, without the newline */
	size_t len;
	bool   first;		/* the start of a line */
	bool   last;		/* the end of a line */
	bool   newline;		/* ... and it ended in a newline (not end of input) */
};

static bool
reader_next(struct reader *rd, struct piece *pc)
{
	for (;;) {
		char *nl = memchr(rd->buf + rd->start, '\n', rd->end - rd->start);
		bool full = rd->start == 0 && rd->end == READ_MAX;
		if (nl != NULL || full || (rd->eof && rd->end > rd->start)) {
			size_t stop = nl ? (size_t)(nl - rd->buf) : rd->end;
			pc->text = rd->buf + rd->start;
			pc->len = stop - rd->start;
			pc->text[pc->len] = '\0';
			pc->first = !rd->in_line;
			pc->last = nl != NULL || rd->eof;
			pc->newline = nl != NULL;
			rd->in_line = !pc->last;
			rd->start = nl ? stop + 1 : rd->end;
			return true;
		}
		if (rd->eof)
			return false;
		memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
		rd->end -= rd->start;
		rd->start = 0;
		fflush(stdout);
		ssize_t n = read(0, rd->buf + rd->end, READ_MAX - rd->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rd->error = n < 0;
			rd->eof = true;
			continue;
		}
		rd->end += (size_t)n;
	}
}

static bool
worth_explaining(const struct reply *r, const struct opts *o)
{
	return r->event != REPLY_EVENT_NONE || o->all || r->code >= 400 ||
	       (r->code < 0 && (r->enhanced[0] == '4' || r->enhanced[0] == '5'));
}

/* The one line --log adds after a line. */
static void
annotation(const struct reply *r, struct sbuf *sb)
{
	const struct event_text *et = event_text(r);
	struct explanation ex;
	bool have;

	explain_codes(r, &ex, &have);
	sbuf_puts(sb, "    smtptrace: ");
	if (et != NULL)
		sbuf_printf(sb, "%s %s: %s", event_name(r->event), r->stage, event_sentence(et));
	else if (have)
		codes_summary(&ex, sb);
	sbuf_putc(sb, '\n');
}

static int
io_status(const struct reader *rd, int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smtptrace-explain: cannot write: %s\n", strerror(errno));
		return 3;
	}
	if (rd->error) {
		fprintf(stderr, "smtptrace-explain: cannot read: %s\n", strerror(errno));
		return 3;
	}
	return status;
}

/* --log: copy each line, add one explanation line where it says something. */
static int
annotate_log(const struct opts *o)
{
	static struct reader rd;
	static char out[OUT_MAX];
	struct sbuf sb;
	struct piece pc;
	struct reply r = { .code = -1 };
	bool worth = false;

	/* the start of the line: JSON's "input" (4 KiB of it and a cut mark) */
	static char first[4096 + 2];

	sbuf_init(&sb, out, sizeof out);
	while (reader_next(&rd, &pc)) {
		if (pc.first) {	/* a long line is judged by its first piece */
			worth = reply_parse(pc.text, &r) && worth_explaining(&r, o);
			size_t keep = pc.len < sizeof first - 1 ? pc.len : sizeof first - 1;
			memcpy(first, pc.text, keep);
			first[keep] = '\0';
		}
		if (!o->json) {
			fwrite(pc.text, 1, pc.len, stdout);
			if (pc.newline)
				fputc('\n', stdout);
		}
		/* a last line with no newline passes through as it is: an
		 * annotation after it would change it */
		if (!pc.last || !worth || (!o->json && !pc.newline))
			continue;
		if (o->json)
			explain(first, &r, o, &sb);
		else
			annotation(&r, &sb);
		emit(&sb);
	}
	return io_status(&rd, 0);
}

/* One reply (its lines joined) explained; false when a code is unknown. */
static bool
explain_pending(const char *pending, size_t pending_len, const struct opts *o,
		struct sbuf *sb)
{
	char text[4096], echo[1024];
	struct sbuf tsb;
	struct reply r;

	(void)pending_len;
	sbuf_init(&tsb, text, sizeof text);
	reply_join(pending, &r, &tsb);
	/* the input as given, codes and all; a very long one cut with "..." */
	text_copy(echo, sizeof echo, pending);
	if (!o->json)
		sbuf_printf(sb, "%s\n", echo);
	bool known = explain(pending, &r, o, sb);
	if (!o->json)
		sbuf_putc(sb, '\n');
	emit(sb);
	return known;
}

/* stdin: one explanation per reply; "550-" lines wait for the last one. */
static int
explain_stdin(const struct opts *o)
{
	static struct reader rd;
	static char pending[65536], out[OUT_MAX];
	struct sbuf psb, sb;
	struct piece pc;
	struct reply r;
	int status = 0;

	sbuf_init(&psb, pending, sizeof pending);
	sbuf_init(&sb, out, sizeof out);
	while (reader_next(&rd, &pc)) {
		if (!pc.first || pc.len == 0)
			continue;	/* only the first piece of a long line counts */
		reply_parse(pc.text, &r);
		if (psb.len > 0)
			sbuf_putc(&psb, '\n');
		sbuf_puts(&psb, pc.text);
		if (r.continued && !psb.overflow)
			continue;
		if (!explain_pending(pending, psb.len, o, &sb))
			status = 1;
		sbuf_init(&psb, pending, sizeof pending);
	}
	/* a reply whose last line never came ("550-..." then the end) */
	if (psb.len > 0 && !explain_pending(pending, psb.len, o, &sb))
		status = 1;
	return io_status(&rd, status);
}

static void
usage(FILE *f)
{
	fputs("usage: smtptrace-explain [--json] CODE-OR-REPLY ...\n"
	      "       smtptrace-explain [--json] [-]            (replies or log lines on stdin)\n"
	      "       smtptrace-explain --log [--all] [--json]  (annotate a mail log)\n"
	      "       smtptrace-explain --verdicts [--json] [--summary] [--window N] [FILE ...]\n"
	      "\n"
	      "Explains SMTP reply codes (RFC 5321) and enhanced status codes (RFC 3463)\n"
	      "in plain words: what the code means, what happens to the mail, who has to\n"
	      "act and what to do.\n"
	      "\n"
	      "examples:\n"
	      "  smtptrace-explain 354\n"
	      "  smtptrace-explain 5.7.1\n"
	      "  smtptrace-explain '550 5.1.1 <a@example.org>: Recipient address rejected: User unknown'\n"
	      "  smtptrace-explain '550 4.4.7'          (the classes conflict)\n"
	      "  grep 'reject:' /var/log/mail.log | smtptrace-explain\n"
	      "  tail -f /var/log/mail.log | smtptrace-explain --log\n"
	      "  tail -F /var/log/mail.log | smtptrace-explain --verdicts\n"
	      "  smtptrace-explain --verdicts --summary /var/log/mail.log.1\n"
	      "\n"
	      "  --log    copy a mail log through, adding an explanation line after each\n"
	      "           line with a 4xx/5xx code or a 'timeout/lost connection after'\n"
	      "  --all    with --log: explain 2xx and 3xx codes too\n"
	      "  --verdicts  read a mail log holding the MTA's lines and smtptrace's (files,\n"
	      "           or stdin); print one line per smtptrace transaction: what really\n"
	      "           happened and the reply the client got, with the MTA line that\n"
	      "           proves it (resolved=no when none did)\n"
	      "  --summary   with --verdicts: only a report at the end (80 columns)\n"
	      "  --window N  with --verdicts: settle a transaction quiet for N lines\n"
	      "           (default 10000)\n"
	      "  --json   one JSON object per reply: input, code, enhanced, event, class,\n"
	      "           meaning, known, classes_conflict, basic, enhanced_detail;\n"
	      "           with --verdicts, one JSON object per verdict\n"
	      "\n"
	      "exit status: 0 explained, 1 a code is not registered or none was found\n"
	      "(still explained by its class), 2 usage error, 3 a read or write error\n"
	      "(--verdicts: 0 or 2 or 3).\n", f);
}

/* --verdicts: the join of smtptrace's lines with the MTA's (verdict.c). */
static int
verdicts(const struct opts *o, char **files, int nfiles)
{
	if (!o->verdicts) {
		fputs("smtptrace-explain: --summary and --window go with --verdicts\n", stderr);
		return 2;
	}
	if (o->log || o->all || (o->summary && o->json)) {
		fputs("smtptrace-explain: --verdicts takes --json or --summary, "
		      "not both, and not --log or --all\n", stderr);
		return 2;
	}
	struct verdict_opts vo = { .json = o->json, .summary = o->summary,
				   .window = o->window, .cap = VERDICT_CAP };
	return verdict_run(files, nfiles, &vo);
}

/* "--window N": a number of lines, at least 1. */
static bool
parse_window(const char *arg, struct opts *o)
{
	char *stop;

	errno = 0;
	o->window = strtoul(arg, &stop, 10);
	o->window_given = true;
	if (errno == 0 && *stop == '\0' && o->window > 0 && arg[0] != '-' && arg[0] != '\0')
		return true;
	fputs("smtptrace-explain: --window wants a number of lines > 0\n", stderr);
	return false;
}

static const struct option longopts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "log", no_argument, NULL, 'l' },
	{ "all", no_argument, NULL, 'a' },
	{ "verdicts", no_argument, NULL, 'v' },
	{ "summary", no_argument, NULL, 's' },
	{ "window", required_argument, NULL, 'w' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char **argv)
{
	struct opts o = { .window = VERDICT_WINDOW };
	int c;

	while ((c = getopt_long(argc, argv, "jlahV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': o.json = true; break;
		case 'l': o.log = true; break;
		case 'a': o.all = true; break;
		case 'v': o.verdicts = true; break;
		case 's': o.summary = true; break;
		case 'w': if (!parse_window(optarg, &o)) return 2; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("smtptrace-explain %s\n", SMTPTRACE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	if (o.verdicts || o.summary || o.window_given)
		return verdicts(&o, argv + optind, argc - optind);
	if (o.log) {
		if (optind < argc) {
			fputs("smtptrace-explain: --log reads standard input only\n", stderr);
			return 2;
		}
		return annotate_log(&o);
	}
	if (optind == argc || (optind == argc - 1 && strcmp(argv[optind], "-") == 0))
		return explain_stdin(&o);

	static char out[OUT_MAX];
	struct sbuf sb;
	int status = 0;
	sbuf_init(&sb, out, sizeof out);
	for (int i = optind; i < argc; i++) {
		struct reply r;
		char text[4096];
		struct sbuf tsb;
		sbuf_init(&tsb, text, sizeof text);
		reply_join(argv[i], &r, &tsb);
		if (!explain(argv[i], &r, &o, &sb))
			status = 1;
		if (!o.json && i + 1 < argc)
			sbuf_putc(&sb, '\n');
		emit(&sb);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smtptrace-explain: cannot write: %s\n", strerror(errno));
		return 3;
	}
	return status;
}
