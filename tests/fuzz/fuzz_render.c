/*
 * NAME
 *	fuzz_render - random sessions through record_* and all three renderers
 * DESCRIPTION
 *	The input gives a session (id, client name, address and port, HELO
 *	names, TLS at HELO or at MAIL, AUTH, sender, recipients accepted and
 *	rejected with status and text, queue id, every phase time, counters),
 *	an outcome (any value of enum outcome), a stall view, the header's
 *	authserv-id, name length and explain flag, then a value and a cap for
 *	the escape functions alone. Each property is one prop_* function,
 *	written against the contracts in escape.h, record.h, render.h, log.h:
 *
 *	prop_text_copy      text_copy keeps a string shorter than the buffer,
 *	                    else a cut (below) that fits
 *	prop_escape_*       each escape alone decodes back to the cut input
 *	prop_record_*       the record holds the session's values, nothing
 *	                    dropped (fewer than RECORD_FIELDS_MAX fields); the
 *	                    client is "name[addr]:port" with address and port
 *	                    whole, the rejects text complete
 *	prop_kv             printable ASCII, parses, each value decodes to the
 *	                    field cut at the value cap
 *	prop_json           strict JSON (UTF-8 checked), members in order,
 *	                    strings round-trip, the timeline an object of numbers
 *	prop_header         ASCII, lines <= 998, continuation lines start with
 *	                    white space and hold something else, unfolding and
 *	                    RFC 5322 unquoting and percent-decoding give the
 *	                    items back, cut at RENDER_HEADER_VALUE_MAX; the
 *	                    whole header fits RENDER_HEADER_MAX
 *	prop_header_short   the same for the fallback header, ending in cut=yes
 *	prop_log_line       log_record's line: at most LOG_RECORD_MAX bytes,
 *	                    parses, every value cut at one common cap, the
 *	                    largest of log.c's caps that fits
 *	A cut (escape.h): the input when within the cap, else its start (at
 *	most the cap, at most 3 bytes less) and "...", never ending inside a
 *	UTF-8 character (asserted for JSON and text_copy; for key=value and
 *	the header only with FUZZ_KNOWN_BUGS=1: they cut at the byte).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "escape.h"
#include "formats.h"
#include "fuzz_common.h"
#include "log.h"
#include "outcome.h"
#include "record.h"
#include "render.h"
#include "session.h"

#define BIG		(256 * 1024)

/* How a cut must respect UTF-8 characters. */
enum utf8_cut { CUT_BYTES, CUT_UTF8, CUT_UTF8_KNOWN };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out[BIG], want[BIG], line[BIG];
static size_t line_len;
static int lines_logged;

/* ---- cuts ---------------------------------------------------------------------- */

#define EXPECT_CUT(what, got, got_len, src, max, mode) \
	expect_cut(__FILE__, __LINE__, what, got, got_len, src, max, mode)

static void
expect_cut(const char *file, int ln, const char *what, const char *got,
	   size_t got_len, const char *src, size_t max, enum utf8_cut mode)
{
	bool split;
	const char *err = fmt_cut_check(got, got_len, src, max, &split);

	if (err == NULL && (!split || mode == CUT_BYTES))
		return;
	fuzz_dump("got", got, got_len);
	fuzz_dump("input", src ? src : "", src ? strlen(src) : 0);
	fuzz_fail(file, ln, "a documented cut", "%s (cap %zu): %s", what, max,
		  err ? err : "the cut splits a UTF-8 character");
}

/* text_copy's contract: the string when shorter than size, else a cut that fits. */
static void
expect_kept(const char *what, const char *kept, const char *src, size_t size)
{
	size_t n = src ? strlen(src) : 0;

	if (n < size)
		FUZZ_EXPECT_BYTES(what, kept, strlen(kept), src ? src : "", n);
	else if (size <= 3)
		FUZZ_CHECK(kept[0] == '\0', "%s: too small a buffer gives \"\"", what);
	else
		EXPECT_CUT(what, kept, strlen(kept), src, size - 4, CUT_UTF8);
}

/* ---- reading the input ----------------------------------------------------- */

/* A phase time: -1 (not seen) one time in 8; never so large that a
 * timeline (11 phases) passes the 264 bytes render.c gives it. */
static int64_t
fz_time(struct fz *f)
{
	if (fz_below(f, 8) == 0)
		return -1;
	return (int64_t)fz_u32(f) - (fz_bool(f) ? (int64_t)UINT32_MAX : 0);
}

/* A string, or NULL one time in 16 where the API takes NULL. */
static const char *
fz_str_or_null(struct fz *f, char *buf, size_t cap, size_t maxlen)
{
	if (fz_below(f, 16) == 0)
		return NULL;
	fz_str(f, buf, cap, maxlen);
	return buf;
}

static void
build_client(struct fz *f, struct session *s)
{
	char a[700], b[700];
	const char *pa = fz_str_or_null(f, a, sizeof a, 400);
	const char *pb = fz_str_or_null(f, b, sizeof b, 100);

	session_connect(s, pa, pb, fz_bool(f) ? fz_u16(f) : fz_u32(f), fz_time(f));
	expect_kept("client name", s->client_name, pa, sizeof s->client_name);
	expect_kept("client addr", s->client_addr, pb, sizeof s->client_addr);
}

static void
build_helo_tls(struct fz *f, struct session *s)
{
	char a[700];
	const char *pa;

	for (unsigned n = fz_below(f, 4); n > 0; n--) {
		pa = fz_str_or_null(f, a, sizeof a, 400);
		session_helo(s, pa, fz_time(f));
		expect_kept("helo", s->helo, pa, sizeof s->helo);
		FUZZ_CHECK(s->helo_before_tls[0] == '\0', "HELO clears helo_before_tls");
	}
	if (fz_bool(f)) {
		pa = fz_str_or_null(f, a, sizeof a, 60);
		session_set_tls(s, pa);
	}
	if (fz_bool(f)) {
		char before[SESSION_NAME_MAX], tls_before[SESSION_SHORT_MAX];
		snprintf(before, sizeof before, "%s", s->helo);
		snprintf(tls_before, sizeof tls_before, "%s", s->tls_version);
		pa = fz_str_or_null(f, a, sizeof a, 60);
		session_mail_tls(s, pa);
		/* TLS first seen at MAIL: the HELO name was said before it */
		if (pa != NULL && *pa != '\0' && tls_before[0] == '\0') {
			FUZZ_CHECK(s->helo[0] == '\0' && strcmp(s->helo_before_tls, before) == 0,
				   "the HELO name before TLS is not kept as current");
			expect_kept("tls", s->tls_version, pa, sizeof s->tls_version);
		}
	}
}

static void
build_txn(struct fz *f, struct session *s)
{
	char a[700], b[700], c[700];
	const char *pa, *pb, *pc;

	for (unsigned n = fz_below(f, 3); n > 0; n--) {
		pa = fz_str_or_null(f, a, sizeof a, 400);
		pb = fz_str_or_null(f, b, sizeof b, 400);
		txn_begin(s, pa, pb, fz_time(f));
		expect_kept("sender", s->txn.sender, pa, sizeof s->txn.sender);
	}
	for (unsigned n = fz_below(f, 13); n > 0; n--) {
		pa = fz_str_or_null(f, a, sizeof a, 400);
		pb = fz_bool(f) ? fz_str_or_null(f, b, sizeof b, 50) : NULL;
		pc = fz_str_or_null(f, c, sizeof c, 400);
		txn_rcpt(&s->txn, pa, pb, pc, fz_time(f));
	}
	pa = fz_str_or_null(f, a, sizeof a, 50);
	txn_set_queue_id(&s->txn, pa);
	for (int p = 0; p < PHASE__COUNT; p++)
		if (fz_bool(f))
			s->txn.at[p] = fz_time(f);
	s->txn.headers = fz_u16(f);
	s->txn.header_bytes = fz_u32(f);
	s->txn.body_bytes = fz_u32(f);
	s->txn.stall_warnings = fz_below(f, 4) == 0 ? fz_u8(f) : 0;
}

static struct session *
build_session(struct fz *f)
{
	char id[40];

	fz_str(f, id, sizeof id, 30);
	struct session *s = session_create(id, fz_time(f));
	if (s == NULL)
		abort();
	expect_kept("session id", s->id, id, sizeof s->id);
	if (fz_bool(f))
		build_client(f, s);
	build_helo_tls(f, s);
	build_txn(f, s);
	s->unknown_cmds = fz_u8(f);
	return s;
}

static void
build_stall(struct fz *f, struct stall_view *v)
{
	char a[700];

	memset(v, 0, sizeof *v);
	fz_str(f, a, sizeof a, 30);
	text_copy(v->session, sizeof v->session, a);
	v->txn = fz_u8(f);
	fz_str(f, a, sizeof a, 50);
	text_copy(v->queue_id, sizeof v->queue_id, a);
	fz_str(f, a, sizeof a, 200);
	text_copy(v->client, sizeof v->client, a);
	fz_str(f, a, sizeof a, 200);
	text_copy(v->helo, sizeof v->helo, a);
	fz_str(f, a, sizeof a, 200);
	text_copy(v->sender, sizeof v->sender, a);
	v->rcpt = fz_u16(f);
	v->data_at = fz_time(f);
	v->in_data_ms = fz_time(f);
	v->warnings = fz_u8(f);
}

/* ---- what the record should hold --------------------------------------------- */

static const struct field *
must_get(const struct record *r, const char *key)
{
	const struct field *f = record_get(r, key);

	FUZZ_CHECK(f != NULL, "the record has no %s", key);
	return f;
}

static void
expect_text(const struct record *r, const char *key, const char *want_text)
{
	const struct field *f = must_get(r, key);

	FUZZ_CHECK(f->kind == FIELD_TEXT, "%s is not text", key);
	FUZZ_EXPECT_BYTES(key, f->text, strlen(f->text), want_text, strlen(want_text));
}

static void
expect_num(const struct record *r, const char *key, int64_t num)
{
	const struct field *f = must_get(r, key);

	FUZZ_CHECK(f->kind == FIELD_NUM && f->num == num,
		   "%s: got %" PRId64 ", want %" PRId64, key, f->num, num);
}

static void
expect_text_iff(const struct record *r, const char *key, bool present, const char *text)
{
	if (present)
		expect_text(r, key, text);
	else
		FUZZ_CHECK(record_get(r, key) == NULL, "%s should be absent", key);
}

/*
 * record.h: "name[addr]:port", "unknown" for no name; in a buffer too
 * small, the address and port stay whole and only the name is cut.
 */
static void
expect_client(const struct session *s, const char *client, size_t size)
{
	const char *name = s->client_name;
	char where[SESSION_ADDR_MAX + 32];
	int n = snprintf(where, sizeof where, "[%s]",
			 s->client_addr[0] ? s->client_addr : "unknown");

	if (s->client_port != 0)
		snprintf(where + n, sizeof where - (size_t)n, ":%u", s->client_port);
	if (name[0] == '\0' || name[0] == '[')
		name = "unknown";
	size_t len = strlen(client), wlen = strlen(where), nlen = strlen(name);
	FUZZ_CHECK(len < size, "client \"%s\" overflows %zu bytes", client, size);
	FUZZ_CHECK(len >= wlen && strcmp(client + len - wlen, where) == 0,
		   "client \"%s\" does not end in \"%s\"", client, where);
	if (len - wlen == nlen) {
		FUZZ_EXPECT_BYTES("client name", client, nlen, name, nlen);
		return;
	}
	FUZZ_CHECK(nlen + wlen + 1 > size, "client name cut although it fits %zu bytes", size);
	EXPECT_CUT("client name", client, len - wlen, name, len - wlen - 3, CUT_UTF8);
	FUZZ_CHECK(len + 8 >= size - 1, "client name cut to %zu bytes of %zu", len, size);
}

static void
prop_record_client(const struct record *r, const struct session *s)
{
	char small[REGISTRY_TEXT_MAX];

	expect_client(s, must_get(r, "client")->text, sizeof r->client);
	/* the stall view's copy (callbacks.c start_watching) */
	record_client(s, small, sizeof small);
	expect_client(s, small, sizeof small);
}

static void
prop_record_common(const struct record *r, const struct session *s)
{
	FUZZ_CHECK(r->nfields < RECORD_FIELDS_MAX, "%zu fields: some may be dropped", r->nfields);
	expect_text(r, "session", s->id);
	prop_record_client(r, s);
	bool helo = s->helo_count > 0 && s->helo[0] != '\0';
	expect_text_iff(r, "helo", helo, s->helo);
	expect_text_iff(r, "helo_before_tls", !helo && s->helo_before_tls[0] != '\0',
			s->helo_before_tls);
	expect_text_iff(r, "tls", s->tls_version[0] != '\0', s->tls_version);
	expect_text_iff(r, "auth", s->auth_user[0] != '\0', s->auth_user);
}

static void
prop_record_timeline(const struct record *r, const struct session *s)
{
	size_t k = 0;

	for (int p = 0; p < PHASE__COUNT; p++) {
		if (s->txn.at[p] < 0)
			continue;
		FUZZ_CHECK(k < r->ntimeline && strcmp(r->timeline[k].name,
						      phase_name((enum phase)p)) == 0 &&
			   r->timeline[k].ms == s->txn.at[p] - s->connect_at,
			   "timeline item %zu", k);
		k++;
	}
	FUZZ_CHECK(k == r->ntimeline, "timeline has %zu items, want %zu", r->ntimeline, k);
}

static void
prop_record_txn(const struct record *r, const struct session *s, enum outcome o)
{
	const struct txn *t = &s->txn;
	char rejects[8192];
	size_t n = 0;

	prop_record_common(r, s);
	expect_text(r, "kind", "txn");
	expect_num(r, "txn", t->seq);
	expect_text(r, "from", t->sender);
	expect_num(r, "rcpt", t->rcpt_accepted);
	expect_num(r, "rcpt_rejected", t->rcpt_rejected);
	expect_text(r, "outcome", outcome_name(o));
	FUZZ_CHECK((r->queue_id == NULL) == (t->queue_id[0] == '\0'), "queue id");
	if (r->queue_id != NULL)
		FUZZ_EXPECT_BYTES("queue id", r->queue_id, strlen(r->queue_id),
				  t->queue_id, strlen(t->queue_id));
	for (unsigned i = 0; i < t->rejects_kept; i++) {
		const struct rejected_rcpt *rj = &t->rejects[i];
		n += (size_t)snprintf(rejects + n, sizeof rejects - n, "%s%s %s%s%s",
				      i ? "; " : "", rj->addr, rj->status,
				      rj->text[0] ? " " : "", rj->text);
	}
	if (t->rcpt_rejected > t->rejects_kept)
		snprintf(rejects + n, sizeof rejects - n, "; +%u more",
			 t->rcpt_rejected - t->rejects_kept);
	expect_text_iff(r, "rejects", t->rcpt_rejected > 0, rejects);
	if (t->stall_warnings > 0)
		expect_num(r, "stall_warnings", t->stall_warnings);
	else
		FUZZ_CHECK(record_get(r, "stall_warnings") == NULL, "stall_warnings=0");
	prop_record_timeline(r, s);
}

static void
prop_record_conn(const struct record *r, const struct session *s, int64_t now)
{
	prop_record_common(r, s);
	expect_text(r, "kind", "conn");
	expect_num(r, "helo_count", s->helo_count);
	expect_num(r, "txns", s->txn_count);
	expect_num(r, "unknown_cmds", s->unknown_cmds);
	expect_num(r, "duration_ms", now - s->connect_at);
	FUZZ_CHECK(r->queue_id == NULL, "a connection has no queue id");
}

static void
prop_record_stall(const struct record *r, const struct stall_view *v)
{
	FUZZ_CHECK(r->nfields < RECORD_FIELDS_MAX, "%zu fields", r->nfields);
	expect_text(r, "kind", "stall");
	expect_text(r, "session", v->session);
	expect_num(r, "txn", v->txn);
	expect_text(r, "client", v->client);
	expect_text_iff(r, "helo", v->helo[0] != '\0', v->helo);
	expect_text(r, "from", v->sender);
	expect_num(r, "rcpt", v->rcpt);
	expect_num(r, "in_data_ms", v->in_data_ms);
	expect_num(r, "warning", v->warnings);
	FUZZ_CHECK((r->queue_id == NULL) == (v->queue_id[0] == '\0'), "queue id");
}

/* ---- what each renderer should write ------------------------------------------- */

static size_t
timeline_text(const struct record *r, const char *sep, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->ntimeline; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s:%" PRId64, i ? sep : "",
				      r->timeline[i].name, r->timeline[i].ms);
	return n;
}

/* A value decodes to its field: text cut at max, a number, the timeline. */
static void
expect_value(const struct record *r, const struct field *f, size_t max,
	     const char *sep, enum utf8_cut mode, const char *got, size_t got_len)
{
	size_t n;

	switch (f->kind) {
	case FIELD_TEXT:
		EXPECT_CUT(f->key, got, got_len, f->text, max, mode);
		return;
	case FIELD_NUM:
		n = (size_t)sprintf(want, "%" PRId64, f->num);
		break;
	case FIELD_TIMELINE:
		n = timeline_text(r, sep, want, 1024);
		break;
	default:
		abort();
	}
	FUZZ_EXPECT_BYTES(f->key, got, got_len, want, n);
}

static void
prop_kv(const struct record *r, const char *text, size_t len, size_t max)
{
	struct fmt_doc d;
	const char *err = kv_parse(text, len, &d);
	size_t k = 0;

	if (err != NULL) {
		fuzz_dump("line", text, len);
		FUZZ_CHECK(err == NULL, "key=value line: %s at byte %zu", err, d.err_at);
	}
	if (r->queue_id != NULL)
		EXPECT_CUT("kv queue id", d.lead, d.lead_len, r->queue_id, SESSION_QID_MAX,
			   CUT_UTF8_KNOWN);
	else
		FUZZ_CHECK(strcmp(d.lead, "NOQUEUE") == 0, "NOQUEUE");
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field *f = &r->fields[i];
		if (f->flags & FIELD_HEADER_ONLY)
			continue;
		FUZZ_CHECK(k < d.n && strcmp(d.f[k].key, f->key) == 0,
			   "kv field %zu should be %s", k, f->key);
		expect_value(r, f, max, ",", CUT_UTF8_KNOWN, d.f[k].val, d.f[k].val_len);
		k++;
	}
	FUZZ_CHECK(k == d.n, "kv line has %zu fields, want %zu", d.n, k);
	fmt_free(&d);
}

static void
prop_json_timeline(const struct record *r, const struct fmt_field *jf)
{
	struct fmt_doc t;
	const char *err = json_parse(jf->raw, jf->raw_len, &t);

	FUZZ_CHECK(err == NULL && jf->type == J_OBJECT, "timeline: %s", err ? err : "not an object");
	FUZZ_CHECK(t.n == r->ntimeline, "timeline has %zu members, want %zu", t.n, r->ntimeline);
	for (size_t i = 0; i < t.n; i++) {
		char num[32];
		int n = snprintf(num, sizeof num, "%" PRId64, r->timeline[i].ms);
		FUZZ_CHECK(strcmp(t.f[i].key, r->timeline[i].name) == 0 &&
			   t.f[i].type == J_NUMBER, "timeline member %zu", i);
		FUZZ_EXPECT_BYTES("timeline ms", t.f[i].raw, t.f[i].raw_len, num, (size_t)n);
	}
	fmt_free(&t);
}

static void
prop_json(const struct record *r, const char *text, size_t len, size_t max)
{
	struct fmt_doc d;
	const char *err = json_parse(text, len, &d);
	size_t k = 1;

	if (err != NULL) {
		fuzz_dump("line", text, len);
		FUZZ_CHECK(err == NULL, "JSON line: %s at byte %zu", err, d.err_at);
	}
	FUZZ_CHECK(d.n >= 1 && strcmp(d.f[0].key, "queue_id") == 0, "queue_id first");
	if (r->queue_id == NULL) {
		FUZZ_CHECK(d.f[0].type == J_NULL, "queue_id null");
	} else {
		FUZZ_CHECK(d.f[0].type == J_STRING, "queue_id a string");
		EXPECT_CUT("json queue_id", d.f[0].val, d.f[0].val_len, r->queue_id,
			   SESSION_QID_MAX, CUT_UTF8);
	}
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field *f = &r->fields[i];
		if (f->flags & FIELD_HEADER_ONLY)
			continue;
		FUZZ_CHECK(k < d.n && strcmp(d.f[k].key, f->key) == 0,
			   "JSON member %zu should be %s", k, f->key);
		if (f->kind == FIELD_TIMELINE) {
			prop_json_timeline(r, &d.f[k]);
		} else if (f->kind == FIELD_TEXT) {
			FUZZ_CHECK(d.f[k].type == J_STRING, "%s: a string", f->key);
			expect_value(r, f, max, ",", CUT_UTF8, d.f[k].val, d.f[k].val_len);
		} else {
			FUZZ_CHECK(d.f[k].type == J_NUMBER, "%s: a number", f->key);
			expect_value(r, f, max, ",", CUT_UTF8, d.f[k].raw, d.f[k].raw_len);
		}
		k++;
	}
	FUZZ_CHECK(k == d.n, "JSON line has %zu members, want %zu", d.n, k);
	fmt_free(&d);
}

static void
parse_header(const char *value, size_t len, size_t name_len, struct fmt_doc *d)
{
	const char *err = header_parse(value, len, name_len, d);

	if (err != NULL) {
		fuzz_dump("header", value, len);
		FUZZ_CHECK(err == NULL, "header: %s at byte %zu", err, d->err_at);
	}
}

static void
prop_header(const struct record *r, const char *authserv, size_t name_len,
	    bool with_explain, const char *value, size_t len)
{
	struct fmt_doc d;
	size_t k = 0;

	parse_header(value, len, name_len, &d);
	EXPECT_CUT("authserv-id", d.lead, d.lead_len, authserv, RENDER_HEADER_VALUE_MAX,
		   CUT_UTF8_KNOWN);
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field *f = &r->fields[i];
		if ((f->flags & FIELD_LOG_ONLY) ||
		    ((f->flags & FIELD_EXPLAIN) && !with_explain))
			continue;
		FUZZ_CHECK(k < d.n && strcmp(d.f[k].key, f->key) == 0,
			   "header item %zu should be %s", k, f->key);
		expect_value(r, f, RENDER_HEADER_VALUE_MAX, ", ", CUT_UTF8_KNOWN,
			     d.f[k].val, d.f[k].val_len);
		k++;
	}
	FUZZ_CHECK(k == d.n, "header has %zu items, want %zu", d.n, k);
	fmt_free(&d);
}

static void
prop_header_short(const struct record *r, const char *authserv,
		  const char *value, size_t len)
{
	static const char *const keys[] = { "session", "queue_id", "outcome" };
	struct fmt_doc d;
	size_t k = 0;

	parse_header(value, len, 0, &d);
	EXPECT_CUT("authserv-id", d.lead, d.lead_len, authserv, RENDER_HEADER_VALUE_MAX,
		   CUT_UTF8_KNOWN);
	for (size_t i = 0; i < 3; i++) {
		const struct field *f = record_get(r, keys[i]);
		if (f == NULL || f->kind != FIELD_TEXT)
			continue;
		FUZZ_CHECK(k < d.n && strcmp(d.f[k].key, keys[i]) == 0, "short item %zu", k);
		EXPECT_CUT(keys[i], d.f[k].val, d.f[k].val_len, f->text, SESSION_QID_MAX,
			   CUT_UTF8_KNOWN);
		k++;
	}
	FUZZ_CHECK(k + 1 == d.n && strcmp(d.f[k].key, "cut") == 0 &&
		   strcmp(d.f[k].val, "yes") == 0, "the short header ends in cut=yes");
	fmt_free(&d);
}

static void
capture(int priority, const char *text)
{
	if (priority != LOG_INFO)
		return;
	line_len = strlen(text);
	memcpy(line, text, line_len + 1);
	lines_logged++;
}

/*
 * log.h: a record line is at most LOG_RECORD_MAX bytes; when it would be
 * longer, all its values are capped shorter, never the syntax. The line
 * must be the render at one of log.c's caps, the largest that fits.
 */
static void
prop_log_line(const struct record *r, int format)
{
	static const size_t caps[] = { RENDER_LOG_VALUE_MAX, 256, 128, 64, 32, 16 };
	struct sbuf sb;
	size_t i;

	lines_logged = 0;
	log_record(r, format);
	FUZZ_CHECK(lines_logged == 1, "log_record wrote %d lines", lines_logged);
	FUZZ_CHECK(line_len <= LOG_RECORD_MAX, "a record line of %zu bytes", line_len);
	for (i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		sbuf_init(&sb, out, sizeof out);
		if (format == LOG_FORMAT_JSON)
			render_json_max(r, caps[i], &sb);
		else
			render_kv_max(r, caps[i], &sb);
		if (sb.len == line_len && memcmp(out, line, line_len) == 0)
			break;
		FUZZ_CHECK(sb.len > LOG_RECORD_MAX,
			   "values cut at %zu when cap %zu fits (%zu bytes)",
			   i + 1 < sizeof caps / sizeof caps[0] ? caps[i + 1] : 0, caps[i], sb.len);
	}
	FUZZ_CHECK(i < sizeof caps / sizeof caps[0], "the line is no render of the record");
	if (format == LOG_FORMAT_JSON)
		prop_json(r, line, line_len, caps[i]);
	else
		prop_kv(r, line, line_len, caps[i]);
}

/* Every renderer on one record. */
static void
render_all(const struct record *r, const char *authserv, size_t name_len,
	   bool with_explain)
{
	static char hdr[RENDER_HEADER_MAX];
	struct sbuf sb;

	sbuf_init(&sb, out, sizeof out);
	render_kv(r, &sb);
	FUZZ_CHECK(!sb.overflow, "kv overflow");
	prop_kv(r, out, sb.len, RENDER_LOG_VALUE_MAX);

	sbuf_init(&sb, out, sizeof out);
	render_json(r, &sb);
	FUZZ_CHECK(!sb.overflow, "json overflow");
	prop_json(r, out, sb.len, RENDER_LOG_VALUE_MAX);

	prop_log_line(r, LOG_FORMAT_KV);
	prop_log_line(r, LOG_FORMAT_JSON);

	sbuf_init(&sb, hdr, sizeof hdr);
	render_header(r, authserv, name_len, with_explain, &sb);
	FUZZ_CHECK(!sb.overflow, "the header does not fit RENDER_HEADER_MAX");
	prop_header(r, authserv, name_len, with_explain, hdr, sb.len);

	sbuf_init(&sb, hdr, sizeof hdr);
	render_header_short(r, authserv, &sb);
	FUZZ_CHECK(!sb.overflow, "short header overflow");
	prop_header_short(r, authserv, hdr, sb.len);
}

/* ---- the escape functions alone -------------------------------------------------- */

static void
prop_text_copy(const char *src, size_t size)
{
	char got[1024];

	memset(got, 'Z', sizeof got);
	text_copy(got, size, src);
	if (size == 0) {
		FUZZ_CHECK(got[0] == 'Z', "text_copy wrote into an empty buffer");
		return;
	}
	FUZZ_CHECK(memchr(got, '\0', size) != NULL, "text_copy left no NUL");
	FUZZ_CHECK(got[size] == 'Z', "text_copy wrote past its buffer");
	expect_kept("text_copy", got, src, size);
}

static void
prop_escape_kv(const char *v, size_t max)
{
	static char dec[BIG];
	struct sbuf sb;
	size_t n;

	sbuf_init(&sb, out, sizeof out);
	escape_kv(&sb, v, max);
	const char *err = fmt_kv_value(out, sb.len, dec, &n);
	if (err != NULL)
		fuzz_dump("escaped", out, sb.len);
	FUZZ_CHECK(err == NULL, "escape_kv: %s", err);
	EXPECT_CUT("escape_kv", dec, n, v, max, CUT_UTF8_KNOWN);
}

static void
prop_escape_header(const char *v, size_t max)
{
	static char dec[BIG];
	struct sbuf sb;
	size_t n;

	sbuf_init(&sb, out, sizeof out);
	escape_header(&sb, v, max);
	const char *err = fmt_header_value(out, sb.len, dec, &n);
	if (err != NULL)
		fuzz_dump("escaped", out, sb.len);
	FUZZ_CHECK(err == NULL, "escape_header: %s", err);
	EXPECT_CUT("escape_header", dec, n, v, max, CUT_UTF8_KNOWN);
}

static void
prop_escape_json(const char *v, size_t max)
{
	struct fmt_doc d;
	struct sbuf sb;

	sbuf_init(&sb, out, sizeof out);
	sbuf_puts(&sb, "{\"v\":");
	escape_json(&sb, v, max);
	sbuf_putc(&sb, '}');
	const char *err = json_parse(out, sb.len, &d);
	if (err != NULL)
		fuzz_dump("escaped", out, sb.len);
	FUZZ_CHECK(err == NULL && d.n == 1 && d.f[0].type == J_STRING, "escape_json: %s", err);
	EXPECT_CUT("escape_json", d.f[0].val, d.f[0].val_len, v, max, CUT_UTF8);
	fmt_free(&d);
}

static void
escapes_alone(struct fz *f)
{
	char v[2048];
	const char *pv = fz_str_or_null(f, v, sizeof v, 1500);
	size_t max = fz_below(f, 8) == 0 ? fz_below(f, 2000) : fz_below(f, 40);

	prop_text_copy(pv, fz_below(f, 600));
	prop_escape_kv(pv, max);
	prop_escape_header(pv, max);
	prop_escape_json(pv, max);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct record r;
	struct stall_view v;
	char authserv[700];

	log_set_sink(capture);
	fz_init(&f, data, size);
	struct session *s = build_session(&f);
	enum outcome o = (enum outcome)fz_below(&f, OUTCOME__COUNT);
	int64_t end = fz_time(&f);
	build_stall(&f, &v);
	fz_str(&f, authserv, sizeof authserv, 300);
	size_t name_len = fz_below(&f, 80);
	bool with_explain = fz_bool(&f);

	record_txn(&r, s, o, end);
	prop_record_txn(&r, s, o);
	render_all(&r, authserv, name_len, with_explain);

	record_conn(&r, s, end);
	prop_record_conn(&r, s, end);
	render_all(&r, authserv, name_len, with_explain);

	record_stall(&r, &v);
	prop_record_stall(&r, &v);
	render_all(&r, authserv, name_len, with_explain);

	session_free(s);
	escapes_alone(&f);
	return 0;
}
