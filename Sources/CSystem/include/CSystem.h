#ifndef ODAM_CSYSTEM_H
#define ODAM_CSYSTEM_H

/// Asks the kernel to send `signal` to this process when its parent dies (Linux's PR_SET_PDEATHSIG; prctl is
/// variadic, which Swift cannot call). Returns 0, or -1 with errno set (and on systems without it).
int odam_set_parent_death_signal(int signal);

/// Returns the heap's free memory to the kernel where the C library can (glibc's malloc_trim); 1 when memory was
/// released, 0 otherwise (and on other C libraries).
int odam_release_free_heap(void);

/// Makes the C library serve allocations of at least `bytes` with their own mappings, returned to the kernel when
/// freed, and stops glibc from raising that threshold as it sees large frees (the dynamic threshold is what lets a
/// long-running process's heap fragment and grow). Returns 1 when set, 0 otherwise (and on other C libraries).
int odam_set_mmap_threshold(long bytes);

#endif
