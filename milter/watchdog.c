/*
 * NAME
 *	watchdog - the thread that reports stalled uploads while they last
 * DESCRIPTION
 *	See watchdog.h.
 */
#include "watchdog.h"

#include "cfgstore.h"
#include "config.h"
#include "log.h"
#include "record.h"

#define DUE_BATCH 64

static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct stall_view due[DUE_BATCH];
	size_t n;

	while ((n = registry_wait_due(w->reg, due, DUE_BATCH)) > 0)
		for (size_t i = 0; i < n; i++)
			w->report(&due[i], w->arg);
	return NULL;
}

int
watchdog_start(struct watchdog *w, struct registry *reg, watchdog_fn report,
	       const void *arg)
{
	w->reg = reg;
	w->report = report;
	w->arg = arg;
	w->running = pthread_create(&w->thread, NULL, watchdog_main, w) == 0;
	return w->running ? 0 : -1;
}

void
watchdog_stop(struct watchdog *w)
{
	if (!w->running)
		return;
	registry_stop(w->reg);
	pthread_join(w->thread, NULL);
	w->running = false;
}

void
watchdog_report(const struct stall_view *v, const void *arg)
{
	const struct config *cfg = cfgstore_acquire();
	struct record rec;

	(void)arg;
	record_stall(&rec, v);
	log_record(&rec, cfg != NULL ? cfg->log_format : LOG_FORMAT_KV);
	cfgstore_release(cfg);
}
