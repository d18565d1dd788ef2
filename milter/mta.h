/*
 * NAME
 *	mta - the one seam between smtptrace and libmilter's context calls
 * SYNOPSIS
 *	s = mta_getpriv(ctx); v = mta_getsymval(ctx, "i"); t = mta_now_ms();
 * DESCRIPTION
 *	Every smfi_* call a callback makes, and the clock, go through here.
 *	libmilter's API takes char * where it means const char *: the casts
 *	live in mta.c alone. The unit tests link tests/unit/fake_mta.c in its
 *	place, which records the calls and serves macros and time from tables.
 *	Return values: 0 success, -1 failure (MI_FAILURE).
 */
#ifndef SMTPTRACE_MTA_H
#define SMTPTRACE_MTA_H

#include <stdint.h>

#include <libmilter/mfapi.h>

void       *mta_getpriv(SMFICTX *ctx);
int         mta_setpriv(SMFICTX *ctx, void *priv);
/* A macro's value, or NULL when the MTA did not send it. */
const char *mta_getsymval(SMFICTX *ctx, const char *name);
int         mta_setsymlist(SMFICTX *ctx, int stage, const char *macros);
/* Delete the idx-th (1-based) header of that name. */
int         mta_delheader(SMFICTX *ctx, const char *name, int idx);
int         mta_insheader(SMFICTX *ctx, int idx, const char *name,
			  const char *value);
/* Start-up only (main.c): the socket libmilter will listen on. */
int         mta_setconn(const char *socket_spec);
/* Milliseconds of a monotonic clock. */
int64_t     mta_now_ms(void);

#endif
