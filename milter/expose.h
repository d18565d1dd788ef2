/*
 * NAME
 *	expose - what the HTTP listener and the text file serve, as text
 * SYNOPSIS
 *	char *body = expose_metrics(&registry, &len);		malloc'd
 *	char *body = expose_transactions(&registry, now_ms, &len);
 * DESCRIPTION
 *	Renders the Prometheus exposition (metrics.c) and the /transactions
 *	JSON document into one malloc'd buffer each, sized to fit (it grows
 *	and retries when a render overflows). No I/O; the registry is read
 *	through its own lock, the JSON escaped. NULL when out of memory.
 */
#ifndef SMTPTRACE_EXPOSE_H
#define SMTPTRACE_EXPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

char *expose_metrics(struct registry *reg, size_t *len);
char *expose_transactions(struct registry *reg, int64_t now_ms, size_t *len);

#endif
