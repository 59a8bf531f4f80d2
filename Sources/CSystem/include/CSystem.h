#ifndef ODAM_CSYSTEM_H
#define ODAM_CSYSTEM_H

/// Asks the kernel to send `signal` to this process when its parent dies (Linux's PR_SET_PDEATHSIG; prctl is
/// variadic, which Swift cannot call). Returns 0, or -1 with errno set (and on systems without it).
int odam_set_parent_death_signal(int signal);

#endif
