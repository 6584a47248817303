#define _GNU_SOURCE
#include <sys/prctl.h>
#include "tandem_process.h"

int tandem_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}
