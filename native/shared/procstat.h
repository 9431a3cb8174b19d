/* procstat.h: what /proc/<pid>/stat says of a process, for tsrun's native fronts. */
#ifndef TSRUN_PROCSTAT_H
#define TSRUN_PROCSTAT_H
#include <stddef.h>

/* Field 22 of /proc/<pid>/stat (the start time, in clock ticks since boot) as
 * text into out, and the state letter (R, S, Z, ...) into *state when not NULL.
 * 0 on success; -1 when there is no such process (the file cannot be read),
 * -2 when the file does not read as /proc/<pid>/stat should. */
int proc_start_time(long pid, char *out, size_t len, char *state);

#endif
