#include <cblas.h>
// Debian's OpenBLAS exports these; cblas.h declares them in openblas_config.h.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
