/*
 * seccomp.c: install the seccomp filter TypeScript compiled.
 *
 * TypeScript turns the profile (docker's default, or the user's) into
 * classic BPF; the helper only loads it. It goes last, just before exec:
 * from here on every syscall, the helper's own too, passes the filter.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "helper.h"

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9') return ch - '0';
	if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

int step_seccomp(struct child *c, char **a, int n)
{
	(void)n;
	size_t len = strlen(a[0]);
	/* hex of struct sock_filter[] in host byte order: 8 bytes an insn */
	if (len == 0 || len % 16 || len / 16 > BPF_MAXINSNS)
		return fail_msg(c, EINVAL, "seccomp: the program must be 1..%d instructions",
				BPF_MAXINSNS);
	unsigned char *bytes = malloc(len / 2);
	if (!bytes)
		return fail(c, ENOMEM, "seccomp");
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(a[0][i]), lo = hexval(a[0][i + 1]);
		if (hi < 0 || lo < 0) {
			free(bytes);
			return fail_msg(c, EINVAL, "seccomp: bad hex at %zu", i);
		}
		bytes[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	struct sock_fprog prog = {.len = (unsigned short)(len / 16),
				  .filter = (struct sock_filter *)bytes};
	/* Without no_new_privs this needs CAP_SYS_ADMIN: emit no-new-privs
	 * before it (docker's default). */
	if (TR(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0),
	       "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, {len=%u, filter=...})", prog.len) < 0)
		return fail(c, errno, "install the seccomp filter");
	free(bytes);
	return 0;
}
