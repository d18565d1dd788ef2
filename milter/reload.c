/*
 * NAME
 *	reload - SIGUSR1: read the configuration file again, swap it in
 * DESCRIPTION
 *	See reload.h. Which thread: its own (reload_now also from tests).
 */
#include "reload.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cfgstore.h"
#include "config.h"
#include "log.h"
#include "notify.h"

static void
report_kept(void *arg, const char *key, const char *running, const char *in_file)
{
	const char *path = arg;

	log_msg(LOG_WARNING, "reload: %s: %s is now %s in %s, which takes a restart; "
		"%s stays", key, running, in_file, path, running);
}

int
reload_now(const struct reload_source *source, struct registry *reg)
{
	struct config_errors errs = { 0 };
	struct config next;

	notify_reloading();
	const struct config *running = cfgstore_acquire();
	config_defaults(&next);
	if (config_load(source->path, source->must_exist, &next, &errs) < 0) {
		for (int i = 0; i < errs.count; i++)
			log_msg(LOG_ERR, "reload: %s", errs.msg[i]);
		log_msg(LOG_ERR, "reload: %s has errors: the running configuration stays",
			source->path);
		cfgstore_release(running);
		notify_ready("reload failed: the running configuration stays");
		return -1;
	}
	config_keep_restart_keys(running, &next, report_kept, (void *)(uintptr_t)source->path);
	if (source->verbose)
		next.log_verbose = true;
	config_resolve(&next);
	cfgstore_release(running);
	if (cfgstore_publish(&next) != 0) {
		log_msg(LOG_ERR, "reload: out of memory: the running configuration stays");
		notify_ready("reload failed: out of memory");
		return -1;
	}
	if (reg != NULL)
		registry_set_timing(reg, (int64_t)next.stall_warn_after * 1000,
				    (int64_t)next.stall_repeat_every * 1000);
	log_set_verbose(next.log_verbose);
	log_msg(LOG_INFO, "reloaded %s (header %s, log format %s, stall warning after %d s)",
		source->path, next.header_enable ? next.header_name : "off",
		next.log_format == LOG_FORMAT_JSON ? "json" : "kv", next.stall_warn_after);
	notify_ready("configuration reloaded");
	return 0;
}

static void *
reload_thread(void *arg)
{
	struct reload *r = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (sigwait(&set, &sig) == 0 && !atomic_load(&r->stopping))
		reload_now(r->source, r->reg);
	return NULL;
}

int
reload_start(struct reload *r, const struct reload_source *source,
	     struct registry *reg)
{
	r->source = source;
	r->reg = reg;
	atomic_store(&r->stopping, false);
	if (pthread_create(&r->thread, NULL, reload_thread, r) != 0)
		return -1;
	r->running = true;
	return 0;
}

void
reload_stop(struct reload *r)
{
	if (!r->running)
		return;
	atomic_store(&r->stopping, true);
	pthread_kill(r->thread, SIGUSR1);
	pthread_join(r->thread, NULL);
	r->running = false;
}
