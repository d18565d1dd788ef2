/*
 * NAME
 *	fuzz_callbacks - random callback sequences through the fake libmilter seam
 * DESCRIPTION
 *	The input is a configuration, then a list of operations on three
 *	contexts: every callback (negotiate, connect ... close, unknown) in
 *	any order with NULL or random arguments, macros set or removed
 *	(fake_macro), clock steps (fake_now), header edits refused, a reload
 *	(a new configuration published), and, interleaved, what the other
 *	threads do: the watchdog's registry_due with watchdog_report,
 *	/transactions (expose_transactions) and /metrics (expose_metrics).
 *	At the end every context is closed. Properties:
 *
 *	prop_reply          a callback answers CONTINUE, or NOREPLY only for a
 *	                    stage negotiated as no-reply (never at EOM, abort or
 *	                    close); negotiation asks only for what was offered
 *	prop_line           every log line: a record line (kind=txn, conn or
 *	                    stall) parses as key=value or JSON and is at most
 *	                    LOG_RECORD_MAX bytes; any line has no control byte
 *	prop_txn_line       a kind=txn line names a transaction begun (MAIL)
 *	                    and not logged before; its stall_warnings equals
 *	                    the warnings the registry reported for it
 *	prop_conn_lines     closing a connected session logs exactly one
 *	                    kind=conn line for it, an unconnected one none
 *	prop_stall_line     each warning registry_due returns gives one
 *	                    kind=stall line with its session, txn and count
 *	prop_eom_edits      at EOM: the incoming copies of our header deleted
 *	                    (highest index first), then at most one header
 *	                    inserted, exactly when the configuration asks
 *	prop_transactions   /transactions is strict JSON; count rows listed
 *	                    (at most the limit), truncated exactly when some in
 *	                    DATA are left out, "open" the sessions open; each row
 *	                    a transaction begun, not yet logged, in phase data,
 *	                    with the warnings the registry reported; "in_data"
 *	                    the registry's count (FUZZ_KNOWN_BUGS: see README)
 *	prop_gauges         /metrics: smtptrace_connections_open is the
 *	                    number of contexts with a session, _total the
 *	                    sessions made, transactions_in_data the registry's
 *	                    count, transactions_total (all outcomes) the
 *	                    kind=txn lines logged
 *	prop_end            after the last close: connections gauge 0, the
 *	                    registry empty (no entry, no deadline, none
 *	                    stalled), each transaction begun logged exactly
 *	                    once, one configuration snapshot alive
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "callbacks.h"
#include "cfgstore.h"
#include "config.h"
#include "expose.h"
#include "fake_mta.h"
#include "formats.h"
#include "fuzz_common.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "session.h"
#include "watchdog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CTXS		3
#define TXNS_MAX	1024
#define SESSIONS_MAX	1024
#define MACRO_LEN	300
#define DUE_MAX		16

static const char *const macro_names[] = {
	"i", "{rcpt_mailer}", "{rcpt_host}", "{rcpt_addr}", "{auth_authen}",
	"{tls_version}", "j",
};
#define MACROS (sizeof macro_names / sizeof macro_names[0])

struct seen_txn {
	char     session[SESSION_ID_LEN + 1];
	unsigned txn;
	unsigned warned;	/* warnings registry_due reported for it */
	int      logged;	/* its kind=txn lines */
};

struct seen_session {
	char session[SESSION_ID_LEN + 1];
	int  conn_lines;
};

struct ctx_state {
	struct fake_ctx fake;
	char            macro[MACROS][MACRO_LEN + 1];	/* fake_macro keeps pointers */
	unsigned long   offered, agreed;	/* SMFIP_* of the last negotiation */
	bool            negotiated;
};

static struct {
	struct ctx_state   c[CTXS];
	struct config      cfg;
	struct registry    reg;
	struct seen_txn    txns[TXNS_MAX];
	size_t             ntxns;
	struct seen_session sessions[SESSIONS_MAX];
	size_t             nsessions;
	/* what the sink saw of the last watchdog report */
	int                stall_lines;
	char               stall_session[SESSION_ID_LEN + 1];
	long long          stall_txn, stall_warning;
} m;

/* ---- the model ------------------------------------------------------------------ */

static struct seen_txn *
find_txn(const char *session, unsigned long long txn)
{
	for (size_t i = 0; i < m.ntxns && i < TXNS_MAX; i++)
		if (m.txns[i].txn == txn && strcmp(m.txns[i].session, session) == 0)
			return &m.txns[i];
	return NULL;
}

static struct seen_session *
find_session(const char *session)
{
	for (size_t i = 0; i < m.nsessions && i < SESSIONS_MAX; i++)
		if (strcmp(m.sessions[i].session, session) == 0)
			return &m.sessions[i];
	return NULL;
}

static struct session *
session_of(int c)
{
	return m.c[c].fake.priv;
}

/* A context may have got a new session: know it. */
static void
note_session(int c)
{
	struct session *s = session_of(c);

	if (s == NULL || find_session(s->id) != NULL || m.nsessions >= SESSIONS_MAX)
		return;
	snprintf(m.sessions[m.nsessions++].session, SESSION_ID_LEN + 1, "%s", s->id);
}

/* ---- the log lines ------------------------------------------------------------- */

/* A field's text: a kv value, a JSON string, or a JSON number as written. */
static const char *
field_text(const struct fmt_doc *d, const char *key, char *buf, size_t size)
{
	const struct fmt_field *f = fmt_get(d, key);

	if (f == NULL)
		return NULL;
	if (f->type == J_NUMBER)
		snprintf(buf, size, "%.*s", (int)f->raw_len, f->raw);
	else
		snprintf(buf, size, "%s", f->val);
	return buf;
}

static long long
field_num(const struct fmt_doc *d, const char *key, long long missing)
{
	char buf[32];
	const char *t = field_text(d, key, buf, sizeof buf);

	return t != NULL ? strtoll(t, NULL, 10) : missing;
}

static void
prop_txn_line(const struct fmt_doc *d, const char *session)
{
	long long txn = field_num(d, "txn", -1);
	struct seen_txn *t = find_txn(session, (unsigned long long)txn);

	if (m.ntxns > TXNS_MAX)
		return;		/* too many to follow */
	FUZZ_CHECK(t != NULL, "a txn line for %s txn %lld, never begun", session, txn);
	FUZZ_CHECK(t->logged == 0, "%s txn %lld logged twice", session, txn);
	t->logged++;
	long long logged = field_num(d, "stall_warnings", 0);
	FUZZ_CHECK(logged == (long long)t->warned,
		   "%s txn %lld: stall_warnings=%lld, the registry reported %u",
		   session, txn, logged, t->warned);
	FUZZ_CHECK((fmt_get(d, "stalled") != NULL) == (logged > 0), "stalled=yes iff warned");
}

static void
prop_line(const char *line)
{
	size_t len = strlen(line);
	bool json = line[0] == '{';
	struct fmt_doc d;
	char kind[16], session[64];

	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char)line[i] >= 0x20 && line[i] != 0x7f &&
			   (json || (unsigned char)line[i] < 0x7f),
			   "byte %zu of a log line is 0x%02x", i, (unsigned char)line[i]);
	const char *err = json ? json_parse(line, len, &d) : kv_parse(line, len, &d);
	if (err != NULL) {
		fuzz_dump("line", line, len);
		FUZZ_CHECK(err == NULL, "a record line: %s at %zu", err, d.err_at);
	}
	FUZZ_CHECK(len <= LOG_RECORD_MAX, "a record line of %zu bytes", len);
	FUZZ_CHECK(field_text(&d, "kind", kind, sizeof kind) != NULL &&
		   field_text(&d, "session", session, sizeof session) != NULL,
		   "a record line without kind and session");
	if (strcmp(kind, "txn") == 0) {
		prop_txn_line(&d, session);
	} else if (strcmp(kind, "conn") == 0) {
		struct seen_session *s = find_session(session);
		FUZZ_CHECK(s != NULL || m.nsessions >= SESSIONS_MAX,
			   "a conn line for an unknown session %s", session);
		if (s != NULL)
			s->conn_lines++;
	} else {
		FUZZ_CHECK(strcmp(kind, "stall") == 0, "kind=%s", kind);
		m.stall_lines++;
		snprintf(m.stall_session, sizeof m.stall_session, "%s", session);
		m.stall_txn = field_num(&d, "txn", -1);
		m.stall_warning = field_num(&d, "warning", -1);
	}
	fmt_free(&d);
}

static void
capture(int priority, const char *line)
{
	if (priority == LOG_INFO) {
		prop_line(line);
		return;
	}
	for (const char *p = line; *p != '\0'; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
			   "a log line (priority %d) with byte 0x%02x", priority,
			   (unsigned char)*p);
}

/* ---- operations ---------------------------------------------------------------- */

/* CONTINUE, or NOREPLY for a stage the MTA agreed needs no reply. */
static void
prop_reply(int c, sfsistat rc, unsigned long nr_bit, const char *what)
{
	FUZZ_CHECK(rc == SMFIS_CONTINUE || rc == SMFIS_NOREPLY, "%s returned %d", what, rc);
	if (rc == SMFIS_NOREPLY)
		FUZZ_CHECK(nr_bit != 0 && m.c[c].negotiated && (m.c[c].agreed & nr_bit),
			   "%s: NOREPLY where no reply was not agreed", what);
}

static char *
fz_arg(struct fz *f, char *buf, size_t cap)
{
	switch (fz_below(f, 8)) {
	case 0:
		return NULL;
	case 1:
		snprintf(buf, cap, "<user@example.org>");
		return buf;
	default:
		fz_str(f, buf, cap, cap - 1);
		return buf;
	}
}

static void
op_negotiate(struct fz *f, int c)
{
	struct ctx_state *cs = &m.c[c];
	unsigned long f0 = fz_bool(f) ? 0x1ff : fz_u32(f);
	unsigned long f1 = fz_bool(f) ? 0x1fffff : fz_u32(f);
	unsigned long pf0 = 0xdead, pf1 = 0xdead, pf2 = 0xdead, pf3 = 0xdead;
	struct session *before = session_of(c);
	char id[SESSION_ID_LEN + 1];
	bool connected = before != NULL && before->connected;

	if (before != NULL)
		snprintf(id, sizeof id, "%s", before->id);
	sfsistat rc = cb_negotiate(FAKE_CTX(&cs->fake), f0, f1, fz_u32(f), fz_u32(f),
				   &pf0, &pf1, &pf2, &pf3);
	FUZZ_CHECK(rc == SMFIS_CONTINUE, "negotiate returned %d", rc);
	FUZZ_CHECK((pf0 & ~f0) == 0 && (pf1 & ~f1) == 0 && pf2 == 0 && pf3 == 0,
		   "negotiate asked for what was not offered");
	cs->offered = f1;
	cs->agreed = pf1;
	cs->negotiated = true;
	if (before != NULL) {
		struct seen_session *s = find_session(id);
		FUZZ_CHECK(s == NULL || s->conn_lines == (connected ? 1 : 0),
			   "a second negotiation: the first session logged %d conn lines",
			   s ? s->conn_lines : -1);
	}
	note_session(c);
}

static void
op_connect(struct fz *f, int c)
{
	struct sockaddr_storage ss;
	struct sockaddr *sa = (struct sockaddr *)&ss;
	char host[300];
	char *name = fz_arg(f, host, sizeof host);

	memset(&ss, 0, sizeof ss);
	switch (fz_below(f, 5)) {
	case 0:
		sa = NULL;
		break;
	case 1:
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)(void *)&ss)->sin_port = fz_u16(f);
		((struct sockaddr_in *)(void *)&ss)->sin_addr.s_addr = fz_u32(f);
		break;
	case 2:
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)(void *)&ss)->sin6_port = fz_u16(f);
		for (int i = 0; i < 16; i++)
			((struct sockaddr_in6 *)(void *)&ss)->sin6_addr.s6_addr[i] = fz_u8(f);
		break;
	case 3:
		ss.ss_family = AF_UNIX;
		fz_str(f, ((struct sockaddr_un *)(void *)&ss)->sun_path,
		       sizeof ((struct sockaddr_un *)(void *)&ss)->sun_path, 100);
		break;
	default:
		ss.ss_family = fz_u16(f);
		for (size_t i = 2; i < 32; i++)
			((unsigned char *)&ss)[i] = fz_u8(f);
	}
	sfsistat rc = cb_connect(FAKE_CTX(&m.c[c].fake), name, sa);
	prop_reply(c, rc, SMFIP_NR_CONN, "connect");
	note_session(c);
}

static void
op_envfrom(struct fz *f, int c, bool rcpt)
{
	char a[300], b[300];
	char *argv[3] = { NULL, NULL, NULL };
	struct session *s = session_of(c);
	char **pargv = argv;

	switch (fz_below(f, 6)) {
	case 0: pargv = NULL; break;
	case 1: break;
	case 2: argv[0] = fz_arg(f, a, sizeof a); argv[1] = fz_arg(f, b, sizeof b); break;
	default: argv[0] = fz_arg(f, a, sizeof a);
	}
	if (!rcpt) {
		prop_reply(c, cb_envfrom(FAKE_CTX(&m.c[c].fake), pargv), SMFIP_NR_MAIL, "mail");
		if (s == NULL)
			return;
		FUZZ_CHECK(session_of(c) == s && s->txn.active, "MAIL began no transaction");
		FUZZ_CHECK(find_txn(s->id, s->txn.seq) == NULL, "txn %u began twice", s->txn.seq);
		if (m.ntxns < TXNS_MAX)
			m.txns[m.ntxns] = (struct seen_txn){ .txn = s->txn.seq };
		if (m.ntxns < TXNS_MAX)
			snprintf(m.txns[m.ntxns].session, SESSION_ID_LEN + 1, "%s", s->id);
		m.ntxns++;
		return;
	}
	prop_reply(c, cb_envrcpt(FAKE_CTX(&m.c[c].fake), pargv), SMFIP_NR_RCPT, "rcpt");
}

static void
op_header(struct fz *f, int c)
{
	static const char *const names[] = { "Subject", "X-SMTP-Trace", "x-smtp-trace",
					     "X-Other-Trace", "Received" };
	char n[300], v[1100];
	char *name = n, *value = fz_arg(f, v, sizeof v);
	unsigned pick = fz_below(f, 8);

	if (pick < 5)
		snprintf(n, sizeof n, "%s", names[pick]);
	else
		name = fz_arg(f, n, sizeof n);
	prop_reply(c, cb_header(FAKE_CTX(&m.c[c].fake), name, value), SMFIP_NR_HDR, "header");
}

static void
op_body(struct fz *f, int c)
{
	static unsigned char chunk[65536];
	size_t len = fz_bool(f) ? fz_u8(f) : fz_u16(f);

	prop_reply(c, cb_body(FAKE_CTX(&m.c[c].fake), fz_below(f, 16) ? chunk : NULL,
			      len), SMFIP_NR_BODY, "body");
}

/* header.h: delete the incoming copies (highest index first), then insert ours. */
static void
prop_eom_edits(const struct fake_ctx *fk, unsigned own, bool insert, const char *name,
	       bool refused)
{
	int deletes = 0, inserts = 0;

	for (int i = 0; i < fk->nedits; i++) {
		const struct fake_edit *e = &fk->edits[i];
		FUZZ_CHECK(strcmp(e->name, name) == 0, "an edit of header %s", e->name);
		if (e->op == 'd') {
			FUZZ_CHECK(inserts == 0 && e->idx == (int)own - deletes,
				   "delete %d of %u at index %d", deletes, own, e->idx);
			deletes++;
			continue;
		}
		FUZZ_CHECK(e->op == 'i' && e->idx == 0, "edit op %c at %d", e->op, e->idx);
		inserts++;
	}
	FUZZ_CHECK(inserts <= 1, "%d headers inserted at one EOM", inserts);
	if (refused)
		return;
	int room = FAKE_EDITS_MAX;
	FUZZ_CHECK(deletes == ((int)own < room ? (int)own : room),
		   "%d of %u incoming copies deleted", deletes, own);
	FUZZ_CHECK(inserts == (insert && (int)own < room ? 1 : 0),
		   "%d inserted, want %d", inserts, insert);
	if (inserts == 1) {
		const char *value = fk->edits[fk->nedits - 1].value;
		size_t len = strlen(value);
		struct fmt_doc d;
		if (len + 1 < sizeof fk->edits[0].value) {	/* not cut by the fake */
			const char *err = header_parse(value, len, strlen(name), &d);
			if (err != NULL)
				fuzz_dump("header", value, len);
			FUZZ_CHECK(err == NULL, "inserted header: %s at %zu", err, d.err_at);
			fmt_free(&d);
		}
	}
}

static void
op_eom(int c)
{
	struct ctx_state *cs = &m.c[c];
	struct session *s = session_of(c);
	bool open = s != NULL && s->txn.active && s->txn.at[PHASE_ABORT] < 0;
	unsigned own = open ? s->txn.own_headers : 0;
	bool insert = false;
	char name[64] = "";

	if (open) {
		const struct config *cfg = s->cfg;
		insert = cfg->header_enable &&
			 !(cfg->header_skip_authenticated && s->auth_user[0] != '\0');
		snprintf(name, sizeof name, "%s", cfg->header_name);
	}
	cs->fake.nedits = 0;
	FUZZ_CHECK(cb_eom(FAKE_CTX(&cs->fake)) == SMFIS_CONTINUE, "EOM must be answered");
	if (open)
		prop_eom_edits(&cs->fake, own, insert, name, cs->fake.edits_refused);
	else
		FUZZ_CHECK(cs->fake.nedits == 0, "header edits without a transaction");
}

static void
op_close(int c)
{
	struct session *s = session_of(c);
	char id[SESSION_ID_LEN + 1];
	bool connected = s != NULL && s->connected;

	if (s != NULL)
		snprintf(id, sizeof id, "%s", s->id);
	FUZZ_CHECK(cb_close(FAKE_CTX(&m.c[c].fake)) == SMFIS_CONTINUE, "close");
	FUZZ_CHECK(session_of(c) == NULL, "close left a session");
	if (s != NULL) {
		struct seen_session *ss = find_session(id);
		FUZZ_CHECK(ss == NULL || ss->conn_lines == (connected ? 1 : 0),
			   "close of %s: %d conn lines, connected %d", id,
			   ss ? ss->conn_lines : -1, connected);
	}
	m.c[c].negotiated = false;
}

static void
op_macro(struct fz *f, int c)
{
	static const char *const mailers[] = { "error", "smtp", "local", "" };
	struct ctx_state *cs = &m.c[c];
	unsigned k = fz_below(f, MACROS);
	unsigned how = fz_below(f, 8);

	if (how == 0) {
		fake_macro(&cs->fake, macro_names[k], NULL);
		return;
	}
	if (k == 1 && how < 5)
		snprintf(cs->macro[k], sizeof cs->macro[k], "%s", mailers[how - 1]);
	else if (k == 2 && how < 4)
		snprintf(cs->macro[k], sizeof cs->macro[k], "5.%u.%u", fz_below(f, 10),
			 fz_below(f, 1000));
	else
		fz_str(f, cs->macro[k], sizeof cs->macro[k], MACRO_LEN);
	fake_macro(&cs->fake, macro_names[k], cs->macro[k]);
}

/* The watchdog's turn: what is due, reported as watchdog_report does. */
static void
prop_stall_line(const struct stall_view *v)
{
	m.stall_lines = 0;
	watchdog_report(v, NULL);
	FUZZ_CHECK(m.stall_lines == 1, "%d stall lines for one warning", m.stall_lines);
	FUZZ_CHECK(strcmp(m.stall_session, v->session) == 0 && m.stall_txn == v->txn &&
		   m.stall_warning == v->warnings, "the stall line differs from the warning");
}

static void
op_due(void)
{
	struct stall_view due[DUE_MAX];
	size_t n = registry_due(&m.reg, fake_now, due, DUE_MAX);

	for (size_t i = 0; i < n; i++) {
		struct seen_txn *t = find_txn(due[i].session, due[i].txn);
		FUZZ_CHECK(t != NULL || m.ntxns > TXNS_MAX,
			   "a warning for %s txn %u, never begun", due[i].session, due[i].txn);
		if (t != NULL) {
			FUZZ_CHECK(t->logged == 0, "a warning for a transaction already logged");
			t->warned++;
			FUZZ_CHECK(due[i].warnings == t->warned, "warning %u, counted %u",
				   due[i].warnings, t->warned);
		}
		prop_stall_line(&due[i]);
	}
}

static size_t
in_data(void)
{
	size_t count, stalled;

	registry_counts(&m.reg, &count, &stalled, NULL);
	return count;
}

static long long
open_sessions(void)
{
	long long open = 0;

	for (int c = 0; c < CTXS; c++)
		open += session_of(c) != NULL;
	return open;
}

/* One row of /transactions: a transaction in DATA, its warnings the registry's. */
static void
prop_row(const struct fmt_span *row)
{
	struct fmt_doc d;
	char session[64], phase[16];
	const char *err = json_parse(row->s, row->len, &d);

	FUZZ_CHECK(err == NULL, "a /transactions row: %s", err);
	FUZZ_CHECK(field_text(&d, "session", session, sizeof session) != NULL, "a row without session");
	if (field_text(&d, "phase", phase, sizeof phase) != NULL)
		FUZZ_CHECK(strcmp(phase, "data") == 0, "a row in phase %s", phase);
	struct seen_txn *t = find_txn(session, (unsigned long long)field_num(&d, "txn", -1));
	FUZZ_CHECK(t != NULL || m.ntxns > TXNS_MAX, "a row for %s, no transaction begun", session);
	if (t != NULL) {
		FUZZ_CHECK(t->logged == 0, "a row for a transaction already logged");
		FUZZ_CHECK(field_num(&d, "warnings", 0) == t->warned, "a row with %lld warnings, %u reported",
			   field_num(&d, "warnings", 0), t->warned);
	}
	fmt_free(&d);
}

static void
prop_transactions(size_t limit)
{
	size_t len, n;
	char *body = expose_transactions(&m.reg, fake_now, limit, &len);
	struct fmt_doc d;
	struct fmt_span rows[8];

	FUZZ_CHECK(body != NULL, "/transactions: no memory");
	const char *err = json_parse(body, len, &d);
	if (err != NULL)
		fuzz_dump("/transactions", body, len);
	FUZZ_CHECK(err == NULL, "/transactions: %s at %zu", err, d.err_at);
	const struct fmt_field *tx = fmt_get(&d, "transactions");
	FUZZ_CHECK(tx != NULL && tx->type == J_ARRAY, "/transactions: no list");
	FUZZ_CHECK(json_array(tx->raw, tx->raw_len, rows, 8, &n) == NULL, "the list");
	size_t count = (size_t)field_num(&d, "count", -1);
	size_t all = (size_t)field_num(&d, "in_data", -1);
	const struct fmt_field *trunc = fmt_get(&d, "truncated");
	/* its in_data and /metrics' smtptrace_transactions_in_data (the registry) */
	FUZZ_CHECK(all == in_data(), "in_data %zu, registry %zu", all, in_data());
	FUZZ_CHECK(count == n && n <= (limit ? limit : EXPOSE_ROWS_DEFAULT) && n <= all,
		   "count %zu, rows %zu, limit %zu", count, n, limit);
	FUZZ_CHECK(trunc != NULL && (trunc->type == J_TRUE) == (n < all),
		   "truncated with %zu of %zu", n, all);
	if (fmt_get(&d, "open") != NULL)
		FUZZ_CHECK(field_num(&d, "open", -1) == open_sessions(), "open %lld, sessions %lld",
			   field_num(&d, "open", -1), open_sessions());
	for (size_t i = 0; i < n && i < 8; i++)
		prop_row(&rows[i]);
	fmt_free(&d);
	free(body);
}

static long long
metric(const char *text, const char *name)
{
	char want[128];
	int n = snprintf(want, sizeof want, "\n%s ", name);
	const char *p = strstr(text, want);

	FUZZ_CHECK(p != NULL, "no %s in /metrics", name);
	return strtoll(p + n, NULL, 10);
}

static void
prop_gauges(void)
{
	size_t len;
	char *body = expose_metrics(&m.reg, &len);
	long long open = open_sessions();

	FUZZ_CHECK(body != NULL, "/metrics: no memory");
	FUZZ_CHECK(metric(body, "smtptrace_connections_open") == open,
		   "connections_open %lld, sessions %lld",
		   metric(body, "smtptrace_connections_open"), open);
	FUZZ_CHECK(metric(body, "smtptrace_transactions_in_data") == (long long)in_data(),
		   "in_data gauge");
	FUZZ_CHECK(metric(body, "smtptrace_connections_total") == (long long)m.nsessions ||
		   m.nsessions >= SESSIONS_MAX, "connections_total %lld, sessions %zu",
		   metric(body, "smtptrace_connections_total"), m.nsessions);
	/* one observation per transaction, when it ends (metrics.h) */
	long long ended = 0, counted = 0;
	for (size_t i = 0; i < m.ntxns && i < TXNS_MAX; i++)
		ended += m.txns[i].logged;
	for (const char *p = body; (p = strstr(p, "\nsmtptrace_transactions_total{")) != NULL; p++)
		counted += strtoll(strchr(p, '}') + 1, NULL, 10);
	FUZZ_CHECK(counted == ended || m.ntxns > TXNS_MAX,
		   "transactions_total adds up to %lld, %lld logged", counted, ended);
	free(body);
}

static void
read_config(struct fz *f, struct config *cfg)
{
	config_defaults(cfg);
	snprintf(cfg->header_authserv_id, sizeof cfg->header_authserv_id, "mx.test");
	cfg->header_enable = fz_below(f, 4) != 0;
	cfg->header_skip_authenticated = fz_bool(f);
	cfg->header_explain = fz_bool(f);
	cfg->log_format = fz_bool(f) ? LOG_FORMAT_JSON : LOG_FORMAT_KV;
	cfg->mta_data_timeout = 1 + (int)fz_below(f, 600);
	cfg->mta_timeout_tolerance = (int)fz_below(f, (uint32_t)cfg->mta_data_timeout);
	cfg->stall_warn_after = 1 + (int)fz_below(f, 120);
	cfg->stall_repeat_every = (int)fz_below(f, 120);
	if (fz_below(f, 4) == 0)
		snprintf(cfg->header_name, sizeof cfg->header_name, "X-Other-Trace");
}

static void
op_reload(struct fz *f)
{
	read_config(f, &m.cfg);
	callbacks_init(&m.cfg, &m.reg);
	registry_set_timing(&m.reg, m.cfg.stall_warn_after * 1000LL,
			    m.cfg.stall_repeat_every * 1000LL);
}

static void
op(struct fz *f)
{
	int c = (int)fz_below(f, CTXS);
	SMFICTX *ctx = FAKE_CTX(&m.c[c].fake);
	char a[300];

	switch (fz_below(f, 23)) {
	case 0: op_negotiate(f, c); break;
	case 1: op_connect(f, c); break;
	case 2: prop_reply(c, cb_helo(ctx, fz_arg(f, a, sizeof a)), SMFIP_NR_HELO, "helo"); break;
	case 3: op_envfrom(f, c, false); break;
	case 4: op_envfrom(f, c, true); break;
	case 5: prop_reply(c, cb_data(ctx), SMFIP_NR_DATA, "data"); break;
	case 6: op_header(f, c); break;
	case 7: prop_reply(c, cb_eoh(ctx), SMFIP_NR_EOH, "eoh"); break;
	case 8: op_body(f, c); break;
	case 9: op_eom(c); break;
	case 10: FUZZ_CHECK(cb_abort(ctx) == SMFIS_CONTINUE, "abort"); break;
	case 11: op_close(c); break;
	case 12: prop_reply(c, cb_unknown(ctx, fz_arg(f, a, sizeof a)), SMFIP_NR_UNKN, "unknown"); break;
	case 13: case 14: op_macro(f, c); break;
	case 15: fake_now += fz_u8(f); break;
	case 16: fake_now += (int64_t)fz_u16(f) * 10; break;
	case 17: op_due(); break;
	case 18: prop_transactions(fz_below(f, 4)); break;
	case 19: prop_gauges(); break;
	case 20: m.c[c].fake.edits_refused = fz_below(f, 4) == 0; break;
	case 21: op_reload(f); break;
	default: fake_now += (int64_t)fz_u16(f) * 1000; break;
	}
}

static void
prop_end(void)
{
	size_t count, stalled;

	prop_gauges();
	registry_counts(&m.reg, &count, &stalled, NULL);
	FUZZ_CHECK(count == 0 && stalled == 0, "after close: %zu in DATA, %zu stalled",
		   count, stalled);
	FUZZ_CHECK(registry_next_deadline(&m.reg) == -1, "after close: a deadline left");
	for (size_t i = 0; i < m.ntxns && i < TXNS_MAX; i++)
		FUZZ_CHECK(m.txns[i].logged == 1, "%s txn %u logged %d times",
			   m.txns[i].session, m.txns[i].txn, m.txns[i].logged);
	FUZZ_CHECK(cfgstore_alive() == 1, "%u configuration snapshots alive", cfgstore_alive());
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;

	memset(&m, 0, sizeof m);
	log_set_sink(capture);
	metrics_reset();
	fz_init(&f, data, size);
	read_config(&f, &m.cfg);
	if (registry_init(&m.reg, m.cfg.stall_warn_after * 1000LL,
			  m.cfg.stall_repeat_every * 1000LL) != 0)
		abort();
	callbacks_init(&m.cfg, &m.reg);
	fake_now = fz_u32(&f);
	for (int c = 0; c < CTXS; c++)
		fake_reset(&m.c[c].fake);
	for (int steps = 0; f.n > 0 && steps < 2000; steps++)
		op(&f);
	for (int c = 0; c < CTXS; c++)
		if (session_of(c) != NULL)
			op_close(c);
	prop_end();
	registry_destroy(&m.reg);
	return 0;
}
