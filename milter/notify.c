/*
 * NAME
 *	notify - tell systemd how the daemon is doing (sd_notify)
 * DESCRIPTION
 *	See notify.h. Failures to notify are not errors: the daemon works the
 *	same without a service manager.
 */
#include "notify.h"

#include <systemd/sd-daemon.h>

void
notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
notify_reloading(void)
{
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}

void
notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}
