/*
 * NAME
 *	header - replace the diagnostic header in the message, at end of data
 * DESCRIPTION
 *	See header.h. Which thread: the libmilter worker running xxfi_eom.
 */
#include "header.h"

#include <string.h>

#include "log.h"
#include "mta.h"
#include "outcome.h"
#include "record.h"
#include "render.h"
#include "sbuf.h"

void
header_apply(SMFICTX *ctx, const struct config *cfg, const struct session *s,
	     int64_t now_ms)
{
	char value[RENDER_HEADER_MAX];
	struct record rec;
	struct sbuf sb;

	for (int idx = (int)s->txn.own_headers; idx >= 1; idx--)
		if (mta_delheader(ctx, cfg->header_name, idx) != 0)
			log_degraded(DEGRADED_HEADER_EDIT, "delete");
	if (!cfg->header_enable ||
	    (cfg->header_skip_authenticated && s->auth_user[0] != '\0'))
		return;
	record_txn(&rec, s, OUTCOME_ACCEPTED, now_ms);
	sbuf_init(&sb, value, sizeof value);
	render_header(&rec, cfg->header_authserv_id, strlen(cfg->header_name),
		      cfg->header_explain, &sb);
	if (sb.overflow) {
		/* never insert a value cut in the middle of a quoted string */
		log_degraded(DEGRADED_HEADER_CUT, s->txn.queue_id);
		sbuf_init(&sb, value, sizeof value);
		render_header_short(&rec, cfg->header_authserv_id, &sb);
	}
	if (mta_insheader(ctx, 0, cfg->header_name, value) != 0)
		log_degraded(DEGRADED_HEADER_EDIT, "insert");
}
