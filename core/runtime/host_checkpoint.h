/*
 * core/runtime/host_checkpoint.h: the "mcrt.host.checkpoint/1" table
 * (mcrt/checkpoint.h) over core/checkpoint/. host.c's get_ext returns it.
 */
#ifndef MCRT_CORE_HOST_CHECKPOINT_H
#define MCRT_CORE_HOST_CHECKPOINT_H

#include "mcrt/checkpoint.h"

/* The static table; valid for the life of the process. */
const mcrt_checkpoint_services *checkpoint_services(void);

#endif
