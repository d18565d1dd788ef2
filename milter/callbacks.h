/*
 * NAME
 *	callbacks - the xxfi_* table: fetch the session, hand over to domain code
 * SYNOPSIS
 *	callbacks_init(&cfg); callbacks_fill(&desc); smfi_register(desc);
 * DESCRIPTION
 *	Each callback takes the session from the context, records the event
 *	with the time, and returns. None ever rejects, tempfails or accepts:
 *	an observer continues (or sends no reply where the MTA agreed to
 *	that), and any failure inside only makes it observe less. libmilter
 *	may run the callbacks of one connection on different threads, one at
 *	a time; per-connection state lives only behind smfi_setpriv.
 */
#ifndef SMTPTRACE_CALLBACKS_H
#define SMTPTRACE_CALLBACKS_H

#include <libmilter/mfapi.h>

#include "config.h"
#include "registry.h"

/*
 * cfg (when not NULL) is published to the configuration store
 * (cfgstore.h): each session reads the snapshot current at its connect
 * and then at each MAIL, so a reload never changes a transaction in
 * flight. reg (may be NULL: no stall watching) must outlive every
 * connection.
 */
void callbacks_init(const struct config *cfg, struct registry *reg);
void callbacks_fill(struct smfiDesc *desc);
/*
 * How many MTA connections the open-files limit leaves room for; past it
 * the milter logs (once) that new connections wait: libmilter cannot
 * accept them. 0 or less: no check.
 */
void callbacks_set_connection_room(long room);

sfsistat cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
		      unsigned long f2, unsigned long f3, unsigned long *pf0,
		      unsigned long *pf1, unsigned long *pf2, unsigned long *pf3);
sfsistat cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr);
sfsistat cb_helo(SMFICTX *ctx, char *helohost);
sfsistat cb_envfrom(SMFICTX *ctx, char **argv);
sfsistat cb_envrcpt(SMFICTX *ctx, char **argv);
sfsistat cb_data(SMFICTX *ctx);
sfsistat cb_header(SMFICTX *ctx, char *name, char *value);
sfsistat cb_eoh(SMFICTX *ctx);
sfsistat cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len);
sfsistat cb_eom(SMFICTX *ctx);
sfsistat cb_abort(SMFICTX *ctx);
sfsistat cb_close(SMFICTX *ctx);
sfsistat cb_unknown(SMFICTX *ctx, const char *cmd);

#endif
