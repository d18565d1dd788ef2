/*
 * NAME
 *	header - replace the diagnostic header in the message, at end of data
 * SYNOPSIS
 *	header_apply(ctx, cfg, session, now_ms);
 * DESCRIPTION
 *	Deletes every incoming header of the configured name (a sender must
 *	not be able to forge it), highest index first, whether or not ours is
 *	enabled; then, unless disabled or skipped for an authenticated
 *	client, inserts ours at the top. A header that would not fit its
 *	buffer is replaced by a short one that says so. A refused edit is
 *	counted and logged once; the message goes on either way. Only from
 *	xxfi_eom (libmilter allows header edits there alone).
 */
#ifndef SMTPTRACE_HEADER_H
#define SMTPTRACE_HEADER_H

#include <stdint.h>

#include <libmilter/mfapi.h>

#include "config.h"
#include "session.h"

void header_apply(SMFICTX *ctx, const struct config *cfg,
		  const struct session *s, int64_t now_ms);

#endif
