/*
 * NAME
 *	maillog - turn one mail log line into a normalized event
 * DESCRIPTION
 *	See maillog.h. The steps: split the syslog prefix (date, host,
 *	"prog[pid]: ") from the message; a message that is an smtptrace
 *	record (kv: "QID: kind=...", JSON: "{\"queue_id\":...") is decoded
 *	whatever the program's name; otherwise the first MTA classifier that
 *	claims the program reads the message (Postfix here; Sendmail in
 *	maillog_sendmail.c, with the scanners maillog.h exports for it).
 *
 *	The Postfix lines read, and what they prove (seen on Postfix 3.7,
 *	tests/data/postfix-3.7/ and tests/data/verdicts/ hold real ones; the
 *	write error and reject: END-OF-MESSAGE are from Postfix's source,
 *	not seen):
 *	  smtpd    QID: client=NAME[ADDR]:PORT          opens QID for its pid
 *	  qmgr     QID: from=<S>, size=N, nrcpt=N (queue active)    accepted
 *	  smtp &c. QID: to=<R>, relay=H, ..., dsn=X.Y.Z, status=S (...)
 *	  qmgr     QID: removed
 *	  cleanup  QID: reject: header|body ...: 5.7.1 TEXT      refused, logged
 *	           during the upload (the client may still leave before its dot)
 *	  cleanup  QID: discard: header|body ...            discarded, same
 *	  cleanup, smtpd  warning: QID: queue file size limit exceeded
 *	           refused 552 5.3.4, during the upload
 *	  cleanup  warning: QID: write queue file: ERR      refused 451 4.3.0, same
 *	  cleanup  QID: milter-reject: END-OF-MESSAGE from C: 5.7.1 TEXT; from=..
 *	  smtpd    QID: reject: END-OF-MESSAGE from C: 554 5.7.1 TEXT; from=..
 *	  cleanup  QID: milter-discard: END-OF-MESSAGE from C: ...
 *	  smtpd    QID|NOQUEUE: reject: DATA from C: 554 5.7.1 TEXT; from=<S> ..
 *	           (also milter-reject: DATA)                 refused at DATA
 *	  smtpd    lost connection after DATA (N bytes) from C  abandoned (pid)
 *	  smtpd    timeout after DATA (N bytes) from C          timeout (pid)
 *	  smtpd    disconnect from C ...                        session over
 *	(BDAT in place of DATA alike.) Texts are cut where Postfix appends
 *	"; from=<...>": the first such mark after the reply (the envelope, which
 *	the client chose, comes after it). For reject: header/body the reply is
 *	after the last ">: " that precedes a status code (the header text and
 *	the HELO name, both the client's, come before it).
 */
#include "maillog.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "sbuf.h"

/* ---- small scanners over [p, end) ----------------------------------- */

bool
maillog_starts(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(end - p) >= n && memcmp(p, word, n) == 0;
}

const char *
maillog_find(const char *p, const char *end, const char *needle)
{
	if (p >= end)
		return NULL;
	return memmem(p, (size_t)(end - p), needle, strlen(needle));
}

long long
maillog_number(const char *p, const char *end, const char **stop)
{
	long long n = 0;
	bool any = false;

	while (p < end && isdigit((unsigned char)*p) && n < 100000000000000LL) {
		n = n * 10 + (*p++ - '0');
		any = true;
	}
	if (stop != NULL)
		*stop = p;
	return any ? n : -1;
}

/* A full buffer's end becomes "..." (as text_copy marks a cut). */
static void
mark_cut(char *dst, size_t size)
{
	if (size > sizeof ESCAPE_CUT_MARK)
		memcpy(dst + size - sizeof ESCAPE_CUT_MARK, ESCAPE_CUT_MARK,
		       sizeof ESCAPE_CUT_MARK);
}

/* Copy len bytes of s; a cut copy ends in "...". */
static void
copy_text(char *dst, size_t size, const char *s, size_t len)
{
	struct sbuf sb;

	sbuf_init(&sb, dst, size);
	sbuf_putn(&sb, s, len);
	if (sb.overflow)
		mark_cut(dst, size);
}

/* An enhanced status code c.s.d at p; its length or 0. */
static size_t
enhanced_len(const char *p, const char *end)
{
	const char *q = p;

	if (q >= end || (*q != '2' && *q != '4' && *q != '5'))
		return 0;
	q++;
	for (int part = 0; part < 2; part++) {
		if (q >= end || *q != '.')
			return 0;
		const char *digits = ++q;
		while (q < end && isdigit((unsigned char)*q) && q - digits < 4)
			q++;
		if (q == digits || q - digits > 3)
			return 0;
	}
	if (q < end && (isalnum((unsigned char)*q) || *q == '.'))
		return 0;
	return (size_t)(q - p);
}

/*
 * The reply as logged, [p, stop): "554 5.7.1 text" or "5.7.1 text"; the
 * codes into ev, and the reply, with the class before an enhanced code
 * logged alone ("5xx 5.7.1 text": the client got a 5xx, not known which).
 */
void
maillog_set_reply(const char *p, const char *stop, struct maillog_event *ev)
{
	const char *start = p;
	struct sbuf sb;

	if (stop - p >= 4 && p[0] >= '2' && p[0] <= '5' &&
	    isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
	    (p[3] == ' ' || p[3] == '-')) {
		ev->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		p += 4;
	}
	size_t n = enhanced_len(p, stop);
	if (n > 0)
		copy_text(ev->enhanced, sizeof ev->enhanced, p, n);
	sbuf_init(&sb, ev->reply, sizeof ev->reply);
	if (ev->code < 0 && n > 0)
		sbuf_printf(&sb, "%cxx ", *p);
	sbuf_putn(&sb, start, (size_t)(stop - start));
	if (sb.overflow)
		mark_cut(ev->reply, sizeof ev->reply);
}

void
maillog_set_fixed_reply(struct maillog_event *ev, int code, const char *enhanced,
			const char *text)
{
	struct sbuf sb;

	ev->code = code;
	copy_text(ev->enhanced, sizeof ev->enhanced, enhanced, strlen(enhanced));
	sbuf_init(&sb, ev->reply, sizeof ev->reply);
	sbuf_printf(&sb, "%d %s %s", code, enhanced, text);
}

/* ---- the syslog prefix ---------------------------------------------- */

/* "Dec  1 22:21:29", "Dec 01 22:21:29" (postlogd); returns its length or 0. */
static size_t
classic_time(const char *p, const char *end)
{
	if (end - p < 16 || !isupper((unsigned char)p[0]) || p[3] != ' ' ||
	    p[6] != ' ' || p[9] != ':' || p[12] != ':' ||
	    !isdigit((unsigned char)p[5]) || !isdigit((unsigned char)p[14]))
		return 0;
	size_t n = 15;
	while (p + n < end && p[n] != ' ')	/* ".123456" of high-precision formats */
		n++;
	return n;
}

/* "2026-12-01T22:21:29.123456+00:00"; returns its length or 0. */
static size_t
rfc3339_time(const char *p, const char *end)
{
	if (end - p < 20 || !isdigit((unsigned char)p[0]) || p[4] != '-' ||
	    p[7] != '-' || p[10] != 'T')
		return 0;
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	return sp ? (size_t)(sp - p) : 0;
}

/* "prog[pid]: " or "prog: " at p; the message follows. */
static bool
program(const char *p, const char *end, struct maillog_prefix *px)
{
	const char *q = p;

	while (q < end && *q != ' ' && *q != ':' && *q != '[')
		q++;
	if (q == p || q >= end)
		return false;
	px->prog = p;
	px->prog_len = (size_t)(q - p);
	px->pid = -1;
	if (*q == '[') {
		px->pid = maillog_number(q + 1, end, &q);
		if (q >= end || *q != ']')
			return false;
		q++;
	}
	if (end - q < 2 || q[0] != ':' || q[1] != ' ')
		return false;
	px->msg = q + 2;
	return true;
}

/* The prefix, when there is one; without, the whole line is the message. */
static void
parse_prefix(const char *line, const char *end, struct maillog_prefix *px)
{
	const char *p = line;
	size_t n = classic_time(p, end);

	if (n == 0)
		n = rfc3339_time(p, end);
	px->prog = NULL;
	px->prog_len = 0;
	px->pid = -1;
	px->msg = line;
	px->end = end;
	if (n > 0) {
		p += n;
		while (p < end && *p == ' ')
			p++;
		const char *host = p;	/* the host, then the program */
		while (p < end && *p != ' ')
			p++;
		if (p == host || p >= end)
			return;
		p++;
	}
	if (!program(p, end, px)) {
		px->prog = NULL;
		px->pid = -1;
		px->msg = line;
	}
}

/* ---- smtptrace records ---------------------------------------------- */

enum field_type { F_STR, F_NUM, F_OUTCOME, F_YES, F_KIND, F_QID, F_REPLY };

struct field_spec {
	const char     *key;
	enum field_type type;
	size_t          offset;		/* into struct maillog_txn; F_STR size below */
	size_t          size;
};

#define TXN_STR(k, m) { k, F_STR, offsetof(struct maillog_txn, m), \
			sizeof ((struct maillog_txn *)0)->m }
#define TXN_NUM(k, m) { k, F_NUM, offsetof(struct maillog_txn, m), 0 }

static const struct field_spec txn_fields[] = {
	{ "kind", F_KIND, 0, 0 },
	{ "queue_id", F_QID, 0, 0 },
	TXN_STR("session", session),
	TXN_NUM("txn", txn),
	TXN_STR("client", client),
	TXN_STR("from", from),
	{ "outcome", F_OUTCOME, 0, 0 },
	TXN_NUM("upload_ms", upload_ms),
	TXN_NUM("in_data_ms", in_data_ms),
	{ "stalled", F_YES, 0, 0 },
	TXN_NUM("rcpt", rcpt),
	TXN_NUM("rcpt_rejected", rcpt_rejected),
	TXN_STR("rejects", rejects),
	{ "reply", F_REPLY, 0, 0 },
};

static const struct field_spec *
field_spec(const char *key, size_t len)
{
	for (size_t i = 0; i < sizeof txn_fields / sizeof txn_fields[0]; i++)
		if (strlen(txn_fields[i].key) == len &&
		    memcmp(txn_fields[i].key, key, len) == 0)
			return &txn_fields[i];
	return NULL;
}

static void
txn_reset(struct maillog_txn *t)
{
	t->session[0] = t->client[0] = t->from[0] = '\0';
	t->rejects[0] = t->reply[0] = t->outcome_name[0] = t->reply_enhanced[0] = '\0';
	t->reply_code = -1;
	t->txn = t->upload_ms = t->in_data_ms = t->rcpt = t->rcpt_rejected = -1;
	t->outcome = -1;
	t->stalled = false;
}

/* Store one decoded value; *is_txn learns whether kind is "txn". */
static void
store_field(const struct field_spec *f, const char *v, size_t len,
	    struct maillog_event *ev, bool *is_txn)
{
	struct maillog_txn *t = &ev->txn;

	switch (f->type) {
	case F_STR:
		copy_text((char *)t + f->offset, f->size, v, len);
		break;
	case F_NUM: {
		const char *stop;
		long long n = maillog_number(v, v + len, &stop);
		*(long long *)(void *)((char *)t + f->offset) = stop == v + len ? n : -1;
		break;
	}
	case F_OUTCOME:
		copy_text(t->outcome_name, sizeof t->outcome_name, v, len);
		t->outcome = outcome_from_name(v, len);
		break;
	case F_YES:
		t->stalled = len == 3 && memcmp(v, "yes", 3) == 0;
		break;
	case F_KIND:
		*is_txn = len == 3 && memcmp(v, "txn", 3) == 0;
		break;
	case F_QID:
		copy_text(ev->queue_id, sizeof ev->queue_id, v, len);
		break;
	case F_REPLY:	/* "421 4.4.2" or "5xx 5.7.1" */
		copy_text(t->reply, sizeof t->reply, v, len);
		if (len >= 3 && isdigit((unsigned char)v[0]) &&
		    isdigit((unsigned char)v[1]) && isdigit((unsigned char)v[2]))
			t->reply_code = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
		if (len > 4 && enhanced_len(v + 4, v + len) > 0)
			copy_text(t->reply_enhanced, sizeof t->reply_enhanced,
				  v + 4, enhanced_len(v + 4, v + len));
		break;
	}
}

/* A quoted kv value at p ('"'), C escapes decoded into out; returns past it. */
static const char *
kv_quoted(const char *p, const char *end, struct sbuf *out)
{
	for (p++; p < end && *p != '"'; p++) {
		if (*p != '\\' || p + 1 >= end) {
			sbuf_putc(out, *p);
			continue;
		}
		p++;
		switch (*p) {
		case 'n': sbuf_putc(out, '\n'); break;
		case 'r': sbuf_putc(out, '\r'); break;
		case 't': sbuf_putc(out, '\t'); break;
		case 'x':
			if (end - p >= 3 && isxdigit((unsigned char)p[1]) &&
			    isxdigit((unsigned char)p[2])) {
				char hex[3] = { p[1], p[2], '\0' };
				sbuf_putc(out, (char)strtol(hex, NULL, 16));
				p += 2;
				break;
			}
			/* FALLTHROUGH */
		default: sbuf_putc(out, *p); break;
		}
	}
	return p < end ? p + 1 : end;
}

/* "kind=txn session=... k="quoted v" ..." after "QID: ". */
static bool
kv_record(const char *p, const char *end, struct maillog_event *ev)
{
	char value[MAILLOG_REJECTS_MAX + 8];
	bool is_txn = false;

	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		const char *key = p;
		while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.'))
			p++;
		if (p == key || p >= end || *p != '=')
			break;		/* not key=value: keep what came before */
		const struct field_spec *f = field_spec(key, (size_t)(p - key));
		struct sbuf sb;
		sbuf_init(&sb, value, sizeof value);
		p++;
		if (p < end && *p == '"') {
			p = kv_quoted(p, end, &sb);
		} else {
			const char *v = p;
			while (p < end && *p != ' ')
				p++;
			sbuf_putn(&sb, v, (size_t)(p - v));
		}
		if (f != NULL)
			store_field(f, value, sb.len, ev, &is_txn);
	}
	return is_txn;
}

static int
hex_value(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i];
		v = v * 16 + (isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
	}
	return v;
}

/* A JSON \u escape: one byte below 0x100 (escape_json names bytes so), else UTF-8. */
static void
put_unicode(struct sbuf *out, int cp)
{
	if (cp < 0x100) {
		sbuf_putc(out, (char)cp);
	} else if (cp < 0x800) {
		sbuf_putc(out, (char)(0xc0 | cp >> 6));
		sbuf_putc(out, (char)(0x80 | (cp & 0x3f)));
	} else {
		sbuf_putc(out, (char)(0xe0 | cp >> 12));
		sbuf_putc(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		sbuf_putc(out, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A JSON string at p ('"'), decoded into out; returns past it. */
static const char *
json_string(const char *p, const char *end, struct sbuf *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

	for (p++; p < end && *p != '"'; p++) {
		if (*p != '\\' || p + 1 >= end) {
			sbuf_putc(out, *p);
			continue;
		}
		p++;
		const char *e = strchr(from, *p);
		if (*p == 'u' && end - p >= 5 && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3]) &&
		    isxdigit((unsigned char)p[4])) {
			put_unicode(out, hex_value(p + 1));
			p += 4;
		} else {
			sbuf_putc(out, e != NULL && *p != '\0' ? to[e - from] : *p);
		}
	}
	return p < end ? p + 1 : end;
}

/* Skip one JSON value that is not a string (number, literal, object, array). */
static const char *
json_skip(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		if (*p == '"') {
			struct sbuf none;
			sbuf_init(&none, NULL, 0);
			p = json_string(p, end, &none);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return p;
			depth--;
		} else if (*p == ',' && depth == 0)
			return p;
		p++;
	}
	return p;
}

/* One flat JSON object: {"queue_id":..,"kind":"txn",...}. */
static bool
json_record(const char *p, const char *end, struct maillog_event *ev)
{
	char key[32], value[MAILLOG_REJECTS_MAX + 8];
	bool is_txn = false;

	for (p++; p < end && *p != '}';) {
		struct sbuf ksb, vsb;
		while (p < end && (*p == ' ' || *p == ','))
			p++;
		if (p >= end || *p != '"')
			break;
		sbuf_init(&ksb, key, sizeof key);
		p = json_string(p, end, &ksb);
		while (p < end && (*p == ' ' || *p == ':'))
			p++;
		const struct field_spec *f = ksb.overflow ? NULL : field_spec(key, ksb.len);
		if (p < end && *p == '"') {
			sbuf_init(&vsb, value, sizeof value);
			p = json_string(p, end, &vsb);
			if (f != NULL)
				store_field(f, value, vsb.len, ev, &is_txn);
			continue;
		}
		const char *v = p;
		p = json_skip(p, end);
		if (f != NULL && f->type == F_NUM)
			store_field(f, v, (size_t)(p - v), ev, &is_txn);
	}
	return is_txn;
}

size_t
maillog_qid_len(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && isalnum((unsigned char)*q) && q - p < MAILLOG_QID_MAX)
		q++;
	if (q - p < 5 || q - p >= MAILLOG_QID_MAX || end - q < 2 ||
	    q[0] != ':' || q[1] != ' ')
		return 0;
	return (size_t)(q - p);
}

void
maillog_set_qid(struct maillog_event *ev, const char *p, size_t n)
{
	if (n == 7 && memcmp(p, "NOQUEUE", 7) == 0)
		ev->queue_id[0] = '\0';
	else
		copy_text(ev->queue_id, sizeof ev->queue_id, p, n);
}

/* An smtptrace record in any program's line: true when it is kind=txn. */
static bool
smtptrace_record(const struct maillog_prefix *px, struct maillog_event *ev)
{
	const char *p = px->msg, *end = px->end;

	if (maillog_starts(p, end, "{\"queue_id\":")) {
		txn_reset(&ev->txn);
		return json_record(p, end, ev);
	}
	size_t n = maillog_qid_len(p, end);
	if (n == 0 || !maillog_starts(p + n + 2, end, "kind="))
		return false;
	txn_reset(&ev->txn);
	maillog_set_qid(ev, p, n);
	return kv_record(p + n + 2, end, ev);
}

/* ---- Postfix ---------------------------------------------------------- */

/* "NAME[ADDR]:PORT" at p: the address and port into ev; returns past it. */
static const char *
client_at(const char *p, const char *end, struct maillog_event *ev)
{
	const char *open = memchr(p, '[', (size_t)(end - p));
	if (open == NULL)
		return p;
	const char *close = memchr(open, ']', (size_t)(end - open));
	if (close == NULL)
		return p;
	copy_text(ev->client_addr, sizeof ev->client_addr, open + 1,
		  (size_t)(close - open - 1));
	p = close + 1;
	if (end - p >= 2 && p[0] == ':' && isdigit((unsigned char)p[1]))
		ev->client_port = maillog_number(p + 1, end, &p);
	return p;
}

void
maillog_decision(struct maillog_event *ev, enum outcome o, bool during_upload)
{
	ev->kind = MAILLOG_DECISION;
	ev->outcome = o;
	ev->during_upload = during_upload;
}

/* "STAGE from C: REPLY; from=<S> ...": client, reply, codes, sender. */
static void
reply_from_client(const char *p, const char *end, struct maillog_event *ev)
{
	p = client_at(p, end, ev);
	if (!maillog_starts(p, end, ": "))
		return;
	p += 2;
	const char *stop = maillog_find(p, end, "; from=<");
	maillog_set_reply(p, stop ? stop : end, ev);
	if (stop == NULL)
		return;
	const char *s = stop + 8;
	const char *close = maillog_find(s, end, "> to=<");
	if (close == NULL)
		close = memchr(s, '>', (size_t)(end - s));
	if (close != NULL) {
		ev->sender.s = s;
		ev->sender.len = (size_t)(close - s);
	}
}

/* reject: header|body ...: the reply after the last ">: " before a code. */
static void
reply_after_helo(const char *p, const char *end, struct maillog_event *ev)
{
	const char *best = NULL;
	for (const char *q = maillog_find(p, end, ">: "); q != NULL;
	     q = maillog_find(q + 1, end, ">: "))
		if (enhanced_len(q + 3, end) > 0 || (end - q > 7 && isdigit((unsigned char)q[3]) &&
						     q[6] == ' ' && enhanced_len(q + 7, end) > 0))
			best = q + 3;
	if (best != NULL)
		maillog_set_reply(best, end, ev);
}

static void
postfix_reject(const char *p, const char *end, struct maillog_event *ev)
{
	if (maillog_starts(p, end, "header ") || maillog_starts(p, end, "body ")) {
		maillog_decision(ev, OUTCOME_REFUSED_AFTER_354, true);
		reply_after_helo(p, end, ev);
	} else if (maillog_starts(p, end, "DATA from ") || maillog_starts(p, end, "BDAT from ")) {
		maillog_decision(ev, OUTCOME_REFUSED_AT_DATA, false);
		reply_from_client(p + 10, end, ev);
	} else if (maillog_starts(p, end, "END-OF-MESSAGE from ")) {
		maillog_decision(ev, OUTCOME_REFUSED_AFTER_354, false);
		reply_from_client(p + 20, end, ev);
	}
}

static void
postfix_delivery(const char *p, const char *end, struct maillog_event *ev)
{
	static const struct { const char *mark; size_t off; } parts[] = {
		{ ", relay=", offsetof(struct maillog_event, relay) },
		{ ", dsn=", offsetof(struct maillog_event, dsn) },
		{ ", status=", offsetof(struct maillog_event, status) },
	};

	ev->kind = MAILLOG_DELIVERY;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		const char *v = maillog_find(p, end, parts[i].mark);
		if (v == NULL)
			continue;
		v += strlen(parts[i].mark);
		const char *stop = v;
		while (stop < end && *stop != ',' && *stop != ' ')
			stop++;
		struct maillog_text *t = (void *)((char *)ev + parts[i].off);
		t->s = v;
		t->len = (size_t)(stop - v);
	}
}

/* smtpd's answer to the final dot of a message it queued (or discarded). */
static void
queued_reply(struct maillog_event *ev)
{
	char text[MAILLOG_QID_MAX + 32];
	struct sbuf sb;

	sbuf_init(&sb, text, sizeof text);
	sbuf_printf(&sb, "Ok: queued as %s", ev->queue_id);
	maillog_set_fixed_reply(ev, 250, "2.0.0", text);
}

/* After "QID: " in a Postfix line. */
static void
postfix_queue_line(const char *p, const char *end, struct maillog_event *ev)
{
	if (maillog_starts(p, end, "client=")) {
		ev->kind = MAILLOG_CLIENT;
		client_at(p + 7, end, ev);
	} else if (maillog_starts(p, end, "to=<")) {
		postfix_delivery(p, end, ev);
	} else if (maillog_starts(p, end, "from=<") && end - p > 14 &&
		   memcmp(end - 14, "(queue active)", 14) == 0) {
		maillog_decision(ev, OUTCOME_ACCEPTED, false);
		queued_reply(ev);
	} else if (end - p == 7 && memcmp(p, "removed", 7) == 0) {
		ev->kind = MAILLOG_REMOVED;
	} else if (maillog_starts(p, end, "reject: ")) {
		postfix_reject(p + 8, end, ev);
	} else if (maillog_starts(p, end, "milter-reject: END-OF-MESSAGE from ")) {
		maillog_decision(ev, OUTCOME_REFUSED_AFTER_354, false);
		reply_from_client(p + 35, end, ev);
	} else if (maillog_starts(p, end, "milter-reject: DATA from ")) {
		maillog_decision(ev, OUTCOME_REFUSED_AT_DATA, false);
		reply_from_client(p + 25, end, ev);
	} else if (maillog_starts(p, end, "milter-discard: ")) {
		maillog_decision(ev, OUTCOME_DISCARDED, false);
		queued_reply(ev);
	} else if (maillog_starts(p, end, "discard: ")) {
		maillog_decision(ev, OUTCOME_DISCARDED, true);
		queued_reply(ev);
	}
}

/* "warning: QID: queue file size limit exceeded" and write errors. */
static void
postfix_warning(const char *p, const char *end, struct maillog_event *ev)
{
	size_t n = maillog_qid_len(p, end);
	if (n == 0)
		return;
	const char *what = p + n + 2;
	/* the replies smtpd gives for them (cleanup_stat.c) */
	if (maillog_starts(what, end, "queue file size limit exceeded"))
		maillog_set_fixed_reply(ev, 552, "5.3.4", "Error: message file too big");
	else if (maillog_starts(what, end, "write queue file: "))
		maillog_set_fixed_reply(ev, 451, "4.3.0", "Error: queue file write error");
	else
		return;
	maillog_set_qid(ev, p, n);
	maillog_decision(ev, OUTCOME_REFUSED_AFTER_354, true);
}

/* "lost connection|timeout after DATA (N bytes) from C": by the smtpd pid. */
static void
postfix_after_data(const char *p, const char *end, enum outcome o,
		   struct maillog_event *ev)
{
	if (!maillog_starts(p, end, "DATA ") && !maillog_starts(p, end, "BDAT "))
		return;
	maillog_decision(ev, o, false);
	ev->by_pid = true;
	/* the reply smtpd gives when it times a client out (smtpd.c) */
	if (o == OUTCOME_TIMEOUT_AFTER_354)
		maillog_set_fixed_reply(ev, 421, "4.4.2", "Error: timeout exceeded");
	if (maillog_starts(p + 5, end, "(")) {
		const char *stop;
		ev->bytes = maillog_number(p + 6, end, &stop);
		p = stop;
	}
	const char *from = maillog_find(p, end, " from ");
	if (from != NULL)
		client_at(from + 6, end, ev);
}

static bool
postfix_claims(const struct maillog_prefix *px)
{
	/* syslog_name/daemon: "postfix/smtpd", "postfix/submission/smtpd" */
	return px->prog != NULL && memchr(px->prog, '/', px->prog_len) != NULL;
}

static void
postfix_classify(const struct maillog_prefix *px, struct maillog_event *ev)
{
	const char *p = px->msg, *end = px->end;
	size_t n;

	if (maillog_starts(p, end, "warning: "))
		postfix_warning(p + 9, end, ev);
	else if (maillog_starts(p, end, "disconnect from "))
		ev->kind = MAILLOG_SESSION_END;
	else if (maillog_starts(p, end, "lost connection after "))
		postfix_after_data(p + 22, end, OUTCOME_ABANDONED_AFTER_354, ev);
	else if (maillog_starts(p, end, "timeout after "))
		postfix_after_data(p + 14, end, OUTCOME_TIMEOUT_AFTER_354, ev);
	else if ((n = maillog_qid_len(p, end)) > 0 && !maillog_starts(p, end, "statistics: ")) {
		maillog_set_qid(ev, p, n);
		postfix_queue_line(p + n + 2, end, ev);
	}
}

/* ---- the MTAs --------------------------------------------------------- */

static const struct mta {
	const char *name;
	bool      (*claims)(const struct maillog_prefix *px);
	void      (*classify)(const struct maillog_prefix *px, struct maillog_event *ev);
} mtas[] = {
	{ "postfix", postfix_claims, postfix_classify },
	{ "sendmail", maillog_sendmail_claims, maillog_sendmail_classify },
};

static void
event_reset(struct maillog_event *ev)
{
	/* not the whole struct: txn is only reset for smtptrace lines */
	ev->kind = MAILLOG_OTHER;
	ev->queue_id[0] = ev->client_addr[0] = ev->enhanced[0] = '\0';
	ev->pid = ev->client_port = -1;
	ev->outcome = OUTCOME_ACCEPTED;
	ev->by_pid = ev->during_upload = ev->proves_queued = false;
	ev->code = -1;
	ev->bytes = ev->rcpts = -1;
	ev->reply[0] = '\0';
	ev->sender = ev->status = ev->dsn = ev->relay =
		(struct maillog_text){ NULL, 0 };
}

enum maillog_kind
maillog_classify(const char *line, size_t len, struct maillog_event *ev)
{
	struct maillog_prefix px;
	const char *end = line + len;

	event_reset(ev);
	while (end > line && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	parse_prefix(line, end, &px);
	ev->pid = px.pid;
	ev->message = (struct maillog_text){ px.msg, (size_t)(end - px.msg) };
	if (smtptrace_record(&px, ev)) {
		ev->kind = MAILLOG_TXN;
		return ev->kind;
	}
	ev->queue_id[0] = '\0';
	for (size_t i = 0; i < sizeof mtas / sizeof mtas[0]; i++)
		if (mtas[i].claims(&px)) {
			mtas[i].classify(&px, ev);
			break;
		}
	if (ev->kind == MAILLOG_OTHER)
		ev->queue_id[0] = '\0';
	return ev->kind;
}
