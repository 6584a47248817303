#ifndef TANDEM_PROCESS_H
#define TANDEM_PROCESS_H

/// Marks the calling process as a child subreaper (prctl PR_SET_CHILD_SUBREAPER),
/// so orphaned grandchildren are reparented to it and can be reaped. Returns 0 or -1 (errno set).
int tandem_set_child_subreaper(void);

#endif
