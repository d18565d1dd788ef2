/*
 * NAME
 *	test-milter - a small rejecting milter for smtptrace's end-to-end tests
 * SYNOPSIS
 *	test-milter -p unix:/path/sock -n NAME [-t SECONDS]
 * DESCRIPTION
 *	Attached beside smtptrace (before or after it in smtpd_milters), it acts
 *	on one header only: when the message has "X-Test-NAME: ACTION" (the
 *	name compared without regard to case, the first such header counts),
 *	at end of message it
 *
 *	    reject    answers 550 5.7.1 (smfi_setreply), SMFIS_REJECT
 *	    tempfail  answers 451 4.7.1, SMFIS_TEMPFAIL
 *	    discard   SMFIS_DISCARD
 *
 *	and otherwise (no such header, another NAME, any other value) continues,
 *	so it cannot change the fate of a message that did not ask for it. It
 *	asks for no actions and changes nothing in the message.
 *
 *	-p  the socket, in libmilter's syntax (unix:/path or inet:PORT@HOST);
 *	    a stale unix socket is removed at start; the process umask is set
 *	    to 0 so that user postfix can connect (a test, not a server)
 *	-n  the NAME in X-Test-NAME (letters, digits and '-')
 *	-t  libmilter's I/O timeout in seconds (default 600)
 *
 *	It logs one line per decision on stderr: "test-milter NAME: ACTION".
 *	SIGTERM (libmilter's signal thread) stops it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

/* libmilter's prototypes lack const; it does not write through these. */
#pragma GCC diagnostic ignored "-Wcast-qual"

enum action { ACT_NONE, ACT_REJECT, ACT_TEMPFAIL, ACT_DISCARD };

struct priv {
	enum action action;
	int	seen;			/* an X-Test-NAME header was seen */
};

static char header_name[128];		/* "X-Test-NAME" */
static const char *milter_name = "";

static struct priv *
get_priv(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			return NULL;
		if (smfi_setpriv(ctx, p) != MI_SUCCESS) {
			free(p);
			return NULL;
		}
	}
	return p;
}

static void
reset(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p != NULL) {
		p->action = ACT_NONE;
		p->seen = 0;
	}
}

static enum action
parse_action(const char *v)
{
	size_t	n;

	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && isspace((unsigned char)v[n - 1]))
		n--;
	if (n == 6 && strncasecmp(v, "reject", n) == 0)
		return ACT_REJECT;
	if (n == 8 && strncasecmp(v, "tempfail", n) == 0)
		return ACT_TEMPFAIL;
	if (n == 7 && strncasecmp(v, "discard", n) == 0)
		return ACT_DISCARD;
	return ACT_NONE;
}

static sfsistat
tm_envfrom(SMFICTX *ctx, char **argv)
{
	(void)argv;
	if (get_priv(ctx) == NULL)
		return SMFIS_CONTINUE;	/* no memory: just never act */
	reset(ctx);
	return SMFIS_CONTINUE;
}

static sfsistat
tm_header(SMFICTX *ctx, char *name, char *value)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p != NULL && !p->seen && strcasecmp(name, header_name) == 0) {
		p->seen = 1;
		p->action = parse_action(value);
	}
	return SMFIS_CONTINUE;
}

static sfsistat
tm_eom(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);
	enum action a = p != NULL ? p->action : ACT_NONE;

	reset(ctx);
	switch (a) {
	case ACT_REJECT:
		fprintf(stderr, "test-milter %s: reject\n", milter_name);
		smfi_setreply(ctx, (char *)"550", (char *)"5.7.1",
			      (char *)"Rejected by test milter");
		return SMFIS_REJECT;
	case ACT_TEMPFAIL:
		fprintf(stderr, "test-milter %s: tempfail\n", milter_name);
		smfi_setreply(ctx, (char *)"451", (char *)"4.7.1",
			      (char *)"Deferred by test milter");
		return SMFIS_TEMPFAIL;
	case ACT_DISCARD:
		fprintf(stderr, "test-milter %s: discard\n", milter_name);
		return SMFIS_DISCARD;
	case ACT_NONE:
		break;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
tm_abort(SMFICTX *ctx)
{
	reset(ctx);
	return SMFIS_CONTINUE;
}

static sfsistat
tm_close(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p != NULL) {
		smfi_setpriv(ctx, NULL);
		free(p);
	}
	return SMFIS_CONTINUE;
}

static void
usage(void)
{
	fprintf(stderr, "usage: test-milter -p SOCKET -n NAME [-t SECONDS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static char desc_name[] = "smtptrace-test-milter";
	struct smfiDesc desc;
	const char *sock = NULL;
	int	timeout = 600;
	int	c;
	size_t	i;

	while ((c = getopt(argc, argv, "p:n:t:")) != -1) {
		switch (c) {
		case 'p':
			sock = optarg;
			break;
		case 'n':
			milter_name = optarg;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (sock == NULL || *milter_name == '\0' || optind != argc || timeout <= 0)
		usage();
	for (i = 0; milter_name[i] != '\0'; i++)
		if (!isalnum((unsigned char)milter_name[i]) && milter_name[i] != '-')
			usage();
	if (snprintf(header_name, sizeof(header_name), "X-Test-%s", milter_name)
	    >= (int)sizeof(header_name))
		usage();

	memset(&desc, 0, sizeof(desc));
	desc.xxfi_name = desc_name;
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = 0;
	desc.xxfi_envfrom = tm_envfrom;
	desc.xxfi_header = tm_header;
	desc.xxfi_eom = tm_eom;
	desc.xxfi_abort = tm_abort;
	desc.xxfi_close = tm_close;

	umask(0);
	if (smfi_setconn((char *)sock) != MI_SUCCESS) {
		fprintf(stderr, "test-milter: bad socket %s\n", sock);
		return 1;
	}
	smfi_settimeout(timeout);
	if (smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "test-milter: smfi_register failed\n");
		return 1;
	}
	if (smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "test-milter: cannot open %s\n", sock);
		return 1;
	}
	fprintf(stderr, "test-milter %s: listening on %s\n", milter_name, sock);
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
