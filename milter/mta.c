/*
 * NAME
 *	mta - the one seam between smtptrace and libmilter's context calls
 * DESCRIPTION
 *	See mta.h. Thin: no logic beyond the casts and the status mapping.
 */
#include "mta.h"

#include <time.h>

/* libmilter's prototypes lack const; it does not write through these. */
#pragma GCC diagnostic ignored "-Wcast-qual"

static int
status(int rc)
{
	return rc == MI_SUCCESS ? 0 : -1;
}

void *
mta_getpriv(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

int
mta_setpriv(SMFICTX *ctx, void *priv)
{
	return status(smfi_setpriv(ctx, priv));
}

const char *
mta_getsymval(SMFICTX *ctx, const char *name)
{
	return smfi_getsymval(ctx, (char *)name);
}

int
mta_setsymlist(SMFICTX *ctx, int stage, const char *macros)
{
	return status(smfi_setsymlist(ctx, stage, (char *)macros));
}

int
mta_delheader(SMFICTX *ctx, const char *name, int idx)
{
	return status(smfi_chgheader(ctx, (char *)name, idx, NULL));
}

int
mta_insheader(SMFICTX *ctx, int idx, const char *name, const char *value)
{
	return status(smfi_insheader(ctx, idx, (char *)name, (char *)value));
}

int
mta_setconn(const char *socket_spec)
{
	return status(smfi_setconn((char *)socket_spec));
}

int64_t
mta_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
