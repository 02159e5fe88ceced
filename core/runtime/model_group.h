/*
 * core/runtime/model_group.h: the ranks and the one logical model they make.
 *
 * world = tp_size x pp_size ranks, one worker thread each (world_rank =
 * pp_rank * tp_size + tp_rank). Each rank's model instance is created, stepped
 * and destroyed on its own thread, so a plugin may keep thread-bound state
 * (CUDA device, NUMA-local memory). A step runs the pipeline stages in order;
 * within a stage all tensor-parallel ranks run at once. Stage s's hidden
 * states (from tp rank 0) feed stage s+1; the last stage's tp rank 0 writes
 * the logits. Communication between ranks (all-reduce, send/recv) is lent to
 * the instances by a later issue; the structure is here.
 */
#ifndef MCRT_CORE_MODEL_GROUP_H
#define MCRT_CORE_MODEL_GROUP_H

#include "mcrt/model.h"
#include "plugin/registry.h"
#include "util/log.h"

struct pipeline;
typedef struct model_group model_group;

/* Starts the rank threads and creates every rank's instance with `cfg`.
 * Returns the first failing rank's status (its reason was logged). */
mcrt_status model_group_create(struct pipeline *pipe, const log_sink *log, plugin_entry *pe,
                               const mcrt_config *cfg, int tp, int pp, int threads,
                               model_group **out);
void model_group_destroy(model_group *g);

/* The model's description (vocab, max length from rank 0; the smallest KV
 * pool over all ranks, so one block id is valid everywhere). */
const mcrt_model_info *model_group_info(const model_group *g);

/* One step on every rank; logits[n_logits * padded_vocab_size]. */
mcrt_status model_group_step(model_group *g, const mcrt_step_batch *batch, float *logits);

#endif
