#ifndef TANDEM_PROCESS_H
#define TANDEM_PROCESS_H

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/types.h>

/// Marks the calling process as a child subreaper (prctl PR_SET_CHILD_SUBREAPER),
/// so orphaned grandchildren are reparented to it and can be reaped. Returns 0 or -1 (errno set).
int tandem_set_child_subreaper(void);

/// SIGRTMIN and SIGRTMAX are function-like macros (glibc reserves the first real-time signals).
int tandem_sigrtmin(void);
int tandem_sigrtmax(void);

/// Spawns `argv[0]` (searched in PATH) with every signal reset to its default action and an empty
/// signal mask, so the child does not inherit the supervisor's blocked or ignored signals; with
/// `new_process_group` the child leads a new process group. Returns 0 or an errno value (the
/// exec's own failure, ENOENT or EACCES, is reported here, not by a child exit).
int tandem_spawn(pid_t *pid, char *const argv[], int new_process_group);

/// CPUs in the calling thread's affinity mask (taskset, cpusets; CPU_COUNT is a macro), or -1
/// with errno set.
int tandem_affinity_cpu_count(void);

#endif
