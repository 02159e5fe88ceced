/* core/util/exitcode.c: see exitcode.h. */
#include "util/exitcode.h"

int exit_code_for_status(mcrt_status s)
{
    switch (s) {
    case MCRT_OK:
    case MCRT_DONE: return EXIT_OK;
    case MCRT_E_INVAL:
    case MCRT_E_CONFIG: return EXIT_CONFIG;
    case MCRT_E_IO:
    case MCRT_E_NOTFOUND: return EXIT_NOINPUT;
    case MCRT_E_DATA: return EXIT_DATAERR;
    case MCRT_E_NOMEM:
    case MCRT_E_UNSUPPORTED:
    case MCRT_E_ABI:
    case MCRT_E_DEVICE:
    case MCRT_E_COMM: return EXIT_UNAVAILABLE;
    case MCRT_E_INTERNAL:
    default: return EXIT_SOFTWARE;
    }
}
