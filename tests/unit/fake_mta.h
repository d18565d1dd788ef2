/*
 * A fake of mta.c for the callback tests: a context is a struct fake_ctx
 * (cast to SMFICTX *), macros come from its table, time from fake_now, and
 * every header edit is recorded.
 */
#ifndef SMTPTRACE_FAKE_MTA_H
#define SMTPTRACE_FAKE_MTA_H

#include <stdint.h>

#include <libmilter/mfapi.h>

#define FAKE_MACROS_MAX	16
#define FAKE_EDITS_MAX	16

struct fake_edit {
	char op;		/* 'd' delete, 'i' insert */
	int  idx;
	char name[64];
	char value[4096];
};

struct fake_ctx {
	void *priv;
	const char *macro_name[FAKE_MACROS_MAX];
	const char *macro_value[FAKE_MACROS_MAX];
	int symlists;		/* smfi_setsymlist calls */
	char symlist[8][128];	/* the list asked for, by stage */
	int edits_refused;	/* make header edits fail */
	int nedits;
	struct fake_edit edits[FAKE_EDITS_MAX];
};

extern int64_t fake_now;

#define FAKE_CTX(f) ((SMFICTX *)(void *)(f))

void fake_reset(struct fake_ctx *f);
/* Set (or with value NULL, remove) a macro. */
void fake_macro(struct fake_ctx *f, const char *name, const char *value);

#endif
