/* The fake libmilter seam: see fake_mta.h. */
#include "fake_mta.h"

#include <stdio.h>
#include <string.h>

#include "mta.h"

int64_t fake_now;

static struct fake_ctx *
fake(SMFICTX *ctx)
{
	return (struct fake_ctx *)(void *)ctx;
}

void
fake_reset(struct fake_ctx *f)
{
	memset(f, 0, sizeof *f);
}

void
fake_macro(struct fake_ctx *f, const char *name, const char *value)
{
	int free_slot = -1;

	for (int i = 0; i < FAKE_MACROS_MAX; i++) {
		if (f->macro_name[i] && strcmp(f->macro_name[i], name) == 0) {
			f->macro_value[i] = value;
			if (value == NULL)
				f->macro_name[i] = NULL;
			return;
		}
		if (f->macro_name[i] == NULL && free_slot < 0)
			free_slot = i;
	}
	if (value != NULL && free_slot >= 0) {
		f->macro_name[free_slot] = name;
		f->macro_value[free_slot] = value;
	}
}

void *
mta_getpriv(SMFICTX *ctx)
{
	return fake(ctx)->priv;
}

int
mta_setpriv(SMFICTX *ctx, void *priv)
{
	fake(ctx)->priv = priv;
	return 0;
}

const char *
mta_getsymval(SMFICTX *ctx, const char *name)
{
	struct fake_ctx *f = fake(ctx);

	for (int i = 0; i < FAKE_MACROS_MAX; i++)
		if (f->macro_name[i] && strcmp(f->macro_name[i], name) == 0)
			return f->macro_value[i];
	return NULL;
}

int
mta_setsymlist(SMFICTX *ctx, int stage, const char *macros)
{
	struct fake_ctx *f = fake(ctx);

	f->symlists++;
	if (stage < 0 || stage >= 8)
		return -1;
	snprintf(f->symlist[stage], sizeof f->symlist[stage], "%s", macros);
	return 0;
}

static int
record_edit(SMFICTX *ctx, char op, int idx, const char *name, const char *value)
{
	struct fake_ctx *f = fake(ctx);

	if (f->edits_refused || f->nedits >= FAKE_EDITS_MAX)
		return -1;
	struct fake_edit *e = &f->edits[f->nedits++];
	e->op = op;
	e->idx = idx;
	snprintf(e->name, sizeof e->name, "%s", name);
	snprintf(e->value, sizeof e->value, "%s", value ? value : "");
	return 0;
}

int
mta_delheader(SMFICTX *ctx, const char *name, int idx)
{
	return record_edit(ctx, 'd', idx, name, NULL);
}

int
mta_insheader(SMFICTX *ctx, int idx, const char *name, const char *value)
{
	return record_edit(ctx, 'i', idx, name, value);
}

int64_t
mta_now_ms(void)
{
	return fake_now;
}
