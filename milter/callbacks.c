/*
 * NAME
 *	callbacks - the xxfi_* table: fetch the session, hand over to domain code
 * DESCRIPTION
 *	See callbacks.h. Which thread: any libmilter worker. What it owns:
 *	the session of each connection, created at negotiate (or connect,
 *	when the MTA skips negotiation) and freed at close. Each phase a
 *	session enters is published to the registry's table of open sessions
 *	(live.h: a store, never a wait) for /transactions and /recent.
 */
#include "callbacks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "cfgstore.h"
#include "escape.h"
#include "header.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "mta.h"
#include "outcome.h"
#include "record.h"
#include "render.h"
#include "session.h"

/*
 * Stages the MTA need not wait for: the header stages only, which always
 * end in EOM (which needs a reply) or an abort. Seen with Postfix 3.7:
 * events negotiated as no-reply are buffered on Postfix's side until an
 * event that needs a reply, so CONNECT, HELO, MAIL, RCPT and DATA would
 * all arrive together at the first content event (a useless timeline), and
 * for a session that ends before DATA they never arrive at all. A reply to
 * those costs one local round trip each.
 *
 * Not the body: libmilter hands body bytes that come inside the
 * end-of-message packet (legal in the protocol; a raw milter client sends
 * it, Postfix and Sendmail do not) to the body callback first, and when
 * that returns NOREPLY it skips the EOM callback and sends no reply at all,
 * so the MTA would wait for its timeout. A body callback cannot tell the
 * two packets apart, so it always answers (one round trip per body chunk:
 * Postfix sends up to 64 KiB a chunk).
 */
#define NOREPLY_WANTED (SMFIP_NR_HDR | SMFIP_NR_EOH)
/*
 * Caveat: after SMFIC_QUIT_NC (a reused milter connection) no negotiation
 * comes, the new session has no no-reply bits, and libmilter logs each
 * CONTINUE it turns into no reply.
 */

static struct registry *registry;
static atomic_long connection_room;

/* The table of open sessions: the registry's, when there is one. */
static struct live *
live_of(void)
{
	return registry != NULL ? &registry->live : NULL;
}

void
callbacks_init(const struct config *config, struct registry *reg)
{
	if (config != NULL && cfgstore_publish(config) != 0)
		log_degraded(DEGRADED_NO_MEMORY, "configuration");
	registry = reg;
}

static sfsistat
reply(const struct session *s, unsigned long noreply_bit)
{
	return s != NULL && (s->noreply & noreply_bit) ? SMFIS_NOREPLY
						       : SMFIS_CONTINUE;
}

/* 16 hex digits: 8 random bytes, or (no entropy yet) time and a counter. */
static void
new_session_id(char id[SESSION_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	static atomic_uint_fast64_t counter;
	unsigned char raw[SESSION_ID_LEN / 2];

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		uint64_t v = (uint64_t)mta_now_ms() << 20 ^
			atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ULL;
		memcpy(raw, &v, sizeof raw);
	}
	for (size_t i = 0; i < sizeof raw; i++) {
		id[2 * i] = hex[raw[i] >> 4];
		id[2 * i + 1] = hex[raw[i] & 15];
	}
	id[SESSION_ID_LEN] = '\0';
}

static struct session *
cb_session_new(SMFICTX *ctx)
{
	char id[SESSION_ID_LEN + 1];
	struct session *s;

	new_session_id(id);
	s = session_create(id, mta_now_ms());
	if (s == NULL) {
		log_degraded(DEGRADED_NO_MEMORY, "session");
		return NULL;
	}
	s->cfg = cfgstore_acquire();
	if (mta_setpriv(ctx, s) != 0) {
		cfgstore_release(s->cfg);
		session_free(s);
		log_degraded(DEGRADED_NO_SESSION, "setpriv");
		return NULL;
	}
	metrics_connection_open();
	live_session_open(live_of(), s, s->connect_at);
	long room = atomic_load(&connection_room);
	if (room > 0 && (long)metrics_connections_open() >= room)
		log_degraded(DEGRADED_FD_LIMIT, "the open-files limit");
	return s;
}

void
callbacks_set_connection_room(long room)
{
	atomic_store(&connection_room, room);
}

static struct session *
cb_session_of(SMFICTX *ctx)
{
	return mta_getpriv(ctx);
}

static void
debug_event(const struct session *s, const char *event)
{
	if (log_verbose())
		log_msg(LOG_DEBUG, "session=%s event=%s", s->id, event);
}

static void
take_queue_id(SMFICTX *ctx, struct txn *t)
{
	txn_set_queue_id(t, mta_getsymval(ctx, "i"));
}

/* DATA: watch for a stall until the content comes or the transaction ends. */
static void
start_watching(struct session *s, int64_t now)
{
	struct stall_view *v = &s->txn.stall.view;

	/* the view is shared with the watchdog once registered: a second DATA
	 * event must not write it (only this thread sets "registered") */
	if (registry == NULL || s->txn.stall.registered)
		return;
	text_copy(v->session, sizeof v->session, s->id);
	v->txn = s->txn.seq;
	text_copy(v->queue_id, sizeof v->queue_id, s->txn.queue_id);
	record_client(s, v->client, sizeof v->client);
	text_copy(v->helo, sizeof v->helo, s->helo[0] ? s->helo : s->helo_before_tls);
	text_copy(v->sender, sizeof v->sender, s->txn.sender);
	v->rcpt = s->txn.rcpt_accepted;
	s->txn.stall.live_ref = s->live.ref;	/* its warnings shown in its row */
	if (registry_add(registry, &s->txn.stall, now) != 0)
		log_degraded(DEGRADED_REGISTRY_FULL, s->id);
}

static void
stop_watching(struct session *s)
{
	if (registry != NULL && s->txn.stall.registered)
		s->txn.stall_warnings += registry_remove(registry, &s->txn.stall);
}

/* A transaction that takes events: begun, and not ended by an abort. */
static bool
txn_open(const struct session *s)
{
	return s != NULL && s->txn.active && s->txn.at[PHASE_ABORT] < 0;
}

/* End the open transaction at end_ms: decide, log, forget. */
static void
txn_finish(struct session *s, int64_t end_ms, enum outcome_next next)
{
	const struct config *cfg = s->cfg;
	struct outcome_limits limits = {
		.data_timeout_ms = (int64_t)cfg->mta_data_timeout * 1000,
		.tolerance_ms = (int64_t)cfg->mta_timeout_tolerance * 1000,
	};
	struct record rec;

	stop_watching(s);
	enum outcome o = outcome_decide(&s->txn, end_ms, next, &limits);
	metrics_transaction(s, o);
	record_txn(&rec, s, o, end_ms);
	log_record(&rec, cfg->log_format);
	live_session_ended(live_of(), &rec, end_ms);
	txn_end(s, end_ms);
	live_session_idle(live_of(), s, end_ms);
}

/*
 * The client's next step reached the milter. A transaction whose abort is
 * waiting for it (outcome_needs_next) ends now, at the time of its abort:
 * with "the client went on" (another command) or "the connection closed".
 * With any_open, a transaction still open without an abort ends too (a
 * MAIL or a close: nothing more can come for it).
 */
static void
txn_settle(struct session *s, enum outcome_next next, bool any_open,
	   int64_t now)
{
	const struct txn *t = &s->txn;

	if (!t->active)
		return;
	if (t->at[PHASE_ABORT] >= 0)
		txn_finish(s, t->at[PHASE_ABORT], next);
	else if (any_open)
		txn_finish(s, now, next);
}

/* The connection is over: its open transaction and its own line, then free it. */
static void
session_drop(SMFICTX *ctx, struct session *s, int64_t now)
{
	struct record rec;

	if (s == NULL)
		return;
	const struct config *cfg = s->cfg;
	if (s->txn.active && s->txn.at[PHASE_ABORT] < 0)
		txn_mark(&s->txn, PHASE_CLOSE, now);
	txn_settle(s, OUTCOME_NEXT_CLOSE, true, now);
	if (s->connected) {
		record_conn(&rec, s, now);
		log_record(&rec, cfg->log_format);
	}
	live_session_close(live_of(), s);
	mta_setpriv(ctx, NULL);
	session_free(s);
	cfgstore_release(cfg);
	metrics_connection_close();
}

sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
	     unsigned long f2, unsigned long f3, unsigned long *pf0,
	     unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	/* a second negotiation on one context: end the first session */
	session_drop(ctx, cb_session_of(ctx), mta_now_ms());
	struct session *s = cb_session_new(ctx);

	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST);
	/* Without a session we could not tell later which stages are
	 * no-reply: then ask for none, and always answer CONTINUE. */
	unsigned long noreply = s != NULL ? f1 & NOREPLY_WANTED : 0;
	*pf1 = (f1 & SMFIP_RCPT_REJ) | noreply;
	*pf2 = 0;
	*pf3 = 0;
	if (s != NULL)
		s->noreply = noreply;
	if (*pf0 & SMFIF_SETSYMLIST) {
		mta_setsymlist(ctx, SMFIM_CONNECT, "j v");
		mta_setsymlist(ctx, SMFIM_HELO, "{tls_version}");
		mta_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {tls_version}");
		mta_setsymlist(ctx, SMFIM_ENVRCPT,
			       "i {rcpt_mailer} {rcpt_host} {rcpt_addr}");
		mta_setsymlist(ctx, SMFIM_DATA, "i");
		mta_setsymlist(ctx, SMFIM_EOH, "i");
		mta_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

static void
client_address(const struct sockaddr *sa, char *addr, size_t size,
	       unsigned *port)
{
	*port = 0;
	addr[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)size);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)size);
		*port = ntohs(in6->sin6_port);
	} else if (sa->sa_family == AF_UNIX) {
		text_copy(addr, size, "unix");
	}
}

sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct session *s = cb_session_of(ctx);
	char addr[INET6_ADDRSTRLEN];
	unsigned port;

	if (s == NULL && (s = cb_session_new(ctx)) == NULL)
		return SMFIS_CONTINUE;
	/* one connect per session, before any transaction: a late one (no
	 * MTA sends it; libmilter drops it) must not rewrite a session in flight */
	if (s->connected || s->txn.active)
		return reply(s, SMFIP_NR_CONN);
	client_address(hostaddr, addr, sizeof addr, &port);
	session_connect(s, hostname, addr, port, mta_now_ms());
	session_set_mta(s, mta_getsymval(ctx, "v"));
	live_session_update(live_of(), s, LIVE_CONNECT, s->connect_at);
	debug_event(s, "connect");
	return reply(s, SMFIP_NR_CONN);
}

sfsistat
cb_helo(SMFICTX *ctx, char *helohost)
{
	struct session *s = cb_session_of(ctx);

	if (s == NULL)
		return SMFIS_CONTINUE;
	int64_t now = mta_now_ms();
	txn_settle(s, OUTCOME_NEXT_COMMAND, false, now);
	session_helo(s, helohost, now);
	session_set_tls(s, mta_getsymval(ctx, "{tls_version}"));
	if (!s->txn.active)
		live_session_update(live_of(), s, LIVE_HELO, now);
	debug_event(s, "helo");
	return reply(s, SMFIP_NR_HELO);
}

sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct session *s = cb_session_of(ctx);
	int64_t now = mta_now_ms();

	if (s == NULL)
		return SMFIS_CONTINUE;
	/* the last one ended with an abort, or no abort came for it */
	txn_settle(s, OUTCOME_NEXT_COMMAND, true, now);
	/* a transaction runs on the configuration current at its MAIL */
	const struct config *fresh = cfgstore_acquire();
	cfgstore_release(s->cfg);
	s->cfg = fresh;
	session_mail_tls(s, mta_getsymval(ctx, "{tls_version}"));
	txn_begin(s, argv ? argv[0] : NULL, mta_getsymval(ctx, "{auth_authen}"),
		  now);
	take_queue_id(ctx, &s->txn);
	live_session_update(live_of(), s, LIVE_MAIL, now);
	debug_event(s, "mail");
	return reply(s, SMFIP_NR_MAIL);
}

sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct session *s = cb_session_of(ctx);

	/* a RCPT after DATA (no MTA sends one) is not one of this transaction's */
	if (!txn_open(s) || s->txn.at[PHASE_DATA] >= 0)
		return reply(s, SMFIP_NR_RCPT);
	const char *mailer = mta_getsymval(ctx, "{rcpt_mailer}");
	const char *status = NULL, *text = NULL;
	if (mailer != NULL && strcmp(mailer, "error") == 0) {
		/* rejected by the MTA: {rcpt_host} is the enhanced code,
		 * {rcpt_addr} the reply text */
		status = mta_getsymval(ctx, "{rcpt_host}");
		text = mta_getsymval(ctx, "{rcpt_addr}");
		if (status == NULL || *status == '\0')
			status = "?";
	}
	txn_rcpt(&s->txn, argv ? argv[0] : NULL, status, text, mta_now_ms());
	if (status != NULL)
		metrics_rejected(status);
	take_queue_id(ctx, &s->txn);
	live_session_update(live_of(), s, LIVE_RCPT, s->txn.at[PHASE_RCPT]);
	debug_event(s, status ? "rcpt-rejected" : "rcpt");
	return reply(s, SMFIP_NR_RCPT);
}

sfsistat
cb_data(SMFICTX *ctx)
{
	struct session *s = cb_session_of(ctx);

	/* a second DATA (or BDAT) event would restart the watch and lose
	 * the stall warnings counted so far: the first one counts */
	if (!txn_open(s) || s->txn.at[PHASE_DATA] >= 0)
		return reply(s, SMFIP_NR_DATA);
	int64_t now = mta_now_ms();
	txn_data(&s->txn, now);
	take_queue_id(ctx, &s->txn);
	live_session_update(live_of(), s, LIVE_DATA, now);	/* before the watch */
	start_watching(s, now);
	debug_event(s, "data");
	return reply(s, SMFIP_NR_DATA);
}

sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct session *s = cb_session_of(ctx);

	if (!txn_open(s))
		return reply(s, SMFIP_NR_HDR);
	stop_watching(s);
	txn_header(&s->txn, name, value, s->cfg->header_name, mta_now_ms());
	live_session_update(live_of(), s, LIVE_CONTENT, s->txn.at[PHASE_HEADER]);
	return reply(s, SMFIP_NR_HDR);
}

sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct session *s = cb_session_of(ctx);

	if (!txn_open(s))
		return reply(s, SMFIP_NR_EOH);
	stop_watching(s);
	txn_eoh(&s->txn, mta_now_ms());
	take_queue_id(ctx, &s->txn);
	live_session_update(live_of(), s, LIVE_CONTENT, s->txn.at[PHASE_EOH]);
	debug_event(s, "eoh");
	return reply(s, SMFIP_NR_EOH);
}

sfsistat
cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct session *s = cb_session_of(ctx);

	(void)chunk;
	if (!txn_open(s))
		return reply(s, SMFIP_NR_BODY);
	stop_watching(s);
	txn_body(&s->txn, len, mta_now_ms());
	live_session_update(live_of(), s, LIVE_CONTENT, s->txn.at[PHASE_BODY]);
	return reply(s, SMFIP_NR_BODY);
}

sfsistat
cb_eom(SMFICTX *ctx)
{
	struct session *s = cb_session_of(ctx);
	int64_t now = mta_now_ms();

	if (!txn_open(s))
		return SMFIS_CONTINUE;
	stop_watching(s);
	txn_mark(&s->txn, PHASE_EOM, now);
	take_queue_id(ctx, &s->txn);
	live_session_update(live_of(), s, LIVE_CONTENT, now);
	debug_event(s, "eom");
	header_apply(ctx, s->cfg, s, now);
	txn_finish(s, now, OUTCOME_NEXT_NONE);
	return SMFIS_CONTINUE;
}

/*
 * The MTA ended the transaction. Postfix's ABORT needs no reply, so it
 * reaches the milter only with the client's next step (MILTER-FACTS): its
 * time is that step's, not the refusal's. A transaction in DATA without
 * content cannot be told yet (the client left, or it was refused after
 * its final dot): it leaves the registry now and its line waits for the
 * next event of the connection (txn_settle), at most until close.
 */
sfsistat
cb_abort(SMFICTX *ctx)
{
	struct session *s = cb_session_of(ctx);
	int64_t now = mta_now_ms();

	if (!txn_open(s))
		return SMFIS_CONTINUE;
	debug_event(s, "abort");
	txn_mark(&s->txn, PHASE_ABORT, now);
	stop_watching(s);
	if (!outcome_needs_next(&s->txn))
		txn_finish(s, now, OUTCOME_NEXT_NONE);
	else
		live_session_idle(live_of(), s, now);	/* over, for the client */
	return SMFIS_CONTINUE;
}

sfsistat
cb_close(SMFICTX *ctx)
{
	struct session *s = cb_session_of(ctx);

	if (s != NULL)
		debug_event(s, "close");
	session_drop(ctx, s, mta_now_ms());
	return SMFIS_CONTINUE;
}

sfsistat
cb_unknown(SMFICTX *ctx, const char *cmd)
{
	struct session *s = cb_session_of(ctx);

	(void)cmd;
	if (s == NULL)
		return SMFIS_CONTINUE;
	txn_settle(s, OUTCOME_NEXT_COMMAND, false, mta_now_ms());
	session_unknown(s);
	debug_event(s, "unknown");
	return reply(s, SMFIP_NR_UNKN);
}

void
callbacks_fill(struct smfiDesc *desc)
{
	static char name[] = "smtptrace";

	memset(desc, 0, sizeof *desc);
	desc->xxfi_name = name;
	desc->xxfi_version = SMFI_VERSION;
	desc->xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST;
	desc->xxfi_connect = cb_connect;
	desc->xxfi_helo = cb_helo;
	desc->xxfi_envfrom = cb_envfrom;
	desc->xxfi_envrcpt = cb_envrcpt;
	desc->xxfi_header = cb_header;
	desc->xxfi_eoh = cb_eoh;
	desc->xxfi_body = cb_body;
	desc->xxfi_eom = cb_eom;
	desc->xxfi_abort = cb_abort;
	desc->xxfi_close = cb_close;
	desc->xxfi_unknown = cb_unknown;
	desc->xxfi_data = cb_data;
	desc->xxfi_negotiate = cb_negotiate;
}
