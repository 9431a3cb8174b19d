/* procstat.c: see procstat.h. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

int proc_start_time(long pid, char *out, size_t len, char *state)
{
	char path[64], stat[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	stat[n] = '\0';
	/* the command name may hold spaces and parentheses: count from the last ')' */
	char *p = strrchr(stat, ')');
	if (!p || p[1] != ' ')
		return -2;
	if (state)
		*state = p[2];
	p += 2;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -2;
	size_t l = strcspn(p + 1, " ");
	if (l == 0 || l >= len)
		return -2;
	memcpy(out, p + 1, l);
	out[l] = '\0';
	return 0;
}
