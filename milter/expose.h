/*
 * NAME
 *	expose - what the HTTP listener and the text file serve, as text
 * SYNOPSIS
 *	char *body = expose_metrics(&registry, &len);		malloc'd
 *	char *body = expose_transactions(&registry, now_ms, 0, &len);
 * DESCRIPTION
 *	Renders the Prometheus exposition (metrics.c) and the /transactions
 *	JSON document into one malloc'd buffer each, sized to fit (it grows
 *	and retries when a render overflows, up to EXPOSE_MAX_SIZE). No I/O;
 *	the registry is read through its own lock (a copy of at most the
 *	rows listed), the JSON escaped. NULL when out of memory.
 */
#ifndef SMTPTRACE_EXPOSE_H
#define SMTPTRACE_EXPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

#define EXPOSE_MAX_SIZE		(32 * 1024 * 1024)

char *expose_metrics(struct registry *reg, size_t *len);
/*
 * At most limit rows (EXPOSE_ROWS_DEFAULT when 0, EXPOSE_ROWS_MAX at
 * most), longest in DATA first, and no more than fit EXPOSE_MAX_SIZE;
 * "in_data" counts them all, "count" those listed, "truncated" says when
 * some were left out.
 */
#define EXPOSE_ROWS_DEFAULT	1000
#define EXPOSE_ROWS_MAX		20000
char *expose_transactions(struct registry *reg, int64_t now_ms, size_t limit,
			  size_t *len);

#endif
