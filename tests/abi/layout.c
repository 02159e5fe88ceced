/*
 * tests/abi/layout.c: the public ABI pinned number by number.
 *
 * Every field of every public struct has its offset and its exact type
 * asserted here, every struct its size, and every enum constant its value.
 * The numbers are HARD-CODED on purpose (computed once with a throwaway
 * offsetof printer, then written down): a header edit that moves a field,
 * changes a type or renumbers a constant fails the build right here.
 *
 * If you came here because an assert fired:
 *  - A changed offset, type or constant is an ABI break. Undo it, or bump
 *    MCRT_ABI_MAJOR, which means every plugin must be rebuilt.
 *  - An append (a new field at the end of a struct, a new enum constant with
 *    the next free value) is compatible: ADD asserts for the new items below
 *    the old ones and bump MCRT_ABI_MINOR. The only old lines an append may
 *    edit are that struct's ABI_SIZE and the MCRT_ABI_MINOR pin. Never edit
 *    an ABI_FIELD or an ABI_ENUM line.
 *
 * The offsets and sizes are those of LP64 (x86_64, aarch64), the only
 * targets mcrt supports today; on other data models the struct asserts are
 * skipped and only the enum values and the runtime checks in main() run.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mcrt/mcrt.h" /* every public struct, enum and id */

/* `field` of struct `type` sits at byte `off` and has exactly type `T`
 * (an array field is checked as the pointer it decays to). */
#define ABI_FIELD(type, field, off, T)                                                          \
    _Static_assert(offsetof(type, field) == (off), #type "." #field " moved: ABI break");       \
    _Static_assert(_Generic(((type *)0)->field, T: 1, default: 0),                              \
                   #type "." #field " changed type: ABI break")
#define ABI_SIZE(type, n)                                                                       \
    _Static_assert(sizeof(type) == (n),                                                         \
                   "sizeof(" #type ") changed: ABI break, or an append without its asserts")
#define ABI_ENUM(name, value) _Static_assert((name) == (value), #name " renumbered: ABI break")

/* ---- Versions and counts ------------------------------------------------ */

ABI_ENUM(MCRT_ABI_MAJOR, 1);
ABI_ENUM(MCRT_ABI_MINOR, 0); /* an append bumps it: update this line with the sizes */
ABI_ENUM(MCRT_KIND_COUNT, 5);
ABI_ENUM(MCRT_TENSOR_MAX_DIMS, 4);

/* ---- Enum values (mcrt/status.h, plugin.h, config.h, tensor.h, params.h,
 *      request.h, host.h) ---------------------------------------------------- */

ABI_ENUM(MCRT_OK, 0);
ABI_ENUM(MCRT_DONE, 1);
ABI_ENUM(MCRT_E_INVAL, -1);
ABI_ENUM(MCRT_E_NOMEM, -2);
ABI_ENUM(MCRT_E_UNSUPPORTED, -3);
ABI_ENUM(MCRT_E_ABI, -4);
ABI_ENUM(MCRT_E_IO, -5);
ABI_ENUM(MCRT_E_CONFIG, -6);
ABI_ENUM(MCRT_E_DEVICE, -7);
ABI_ENUM(MCRT_E_COMM, -8);
ABI_ENUM(MCRT_E_INTERNAL, -9);
ABI_ENUM(MCRT_E_NOTFOUND, -10);
ABI_ENUM(MCRT_E_RANGE, -11);
ABI_ENUM(MCRT_E_DATA, -12);
ABI_ENUM(MCRT_E_CANCELLED, -13);

ABI_ENUM(MCRT_KIND_ENGINE, 1);
ABI_ENUM(MCRT_KIND_CONTROLLER, 2);
ABI_ENUM(MCRT_KIND_MODEL, 3);
ABI_ENUM(MCRT_KIND_SAMPLER, 4);
ABI_ENUM(MCRT_KIND_TOKENIZER, 5);

ABI_ENUM(MCRT_CFG_BOOL, 1);
ABI_ENUM(MCRT_CFG_INT, 2);
ABI_ENUM(MCRT_CFG_FLOAT, 3);
ABI_ENUM(MCRT_CFG_STRING, 4);
ABI_ENUM(MCRT_CFG_PATH, 5);
ABI_ENUM(MCRT_CFG_ENUM, 6);
ABI_ENUM(MCRT_CFG_STRING_LIST, 7);
ABI_ENUM(MCRT_CFG_REQUIRED, 1);
ABI_ENUM(MCRT_CFG_HAS_MIN, 2);
ABI_ENUM(MCRT_CFG_HAS_MAX, 4);

ABI_ENUM(MCRT_DTYPE_F32, 1);
ABI_ENUM(MCRT_DTYPE_F16, 2);
ABI_ENUM(MCRT_DTYPE_BF16, 3);
ABI_ENUM(MCRT_DTYPE_F64, 4);
ABI_ENUM(MCRT_DTYPE_I8, 5);
ABI_ENUM(MCRT_DTYPE_I16, 6);
ABI_ENUM(MCRT_DTYPE_I32, 7);
ABI_ENUM(MCRT_DTYPE_I64, 8);
ABI_ENUM(MCRT_DTYPE_U8, 9);
ABI_ENUM(MCRT_DTYPE_BOOL, 10);
ABI_ENUM(MCRT_DEVICE_CPU, 1);
ABI_ENUM(MCRT_DEVICE_CUDA, 2);

ABI_ENUM(MCRT_COMPAT_DEFAULT, 0);
ABI_ENUM(MCRT_COMPAT_MEGATRON, 1);

/* Megatron-Core's inference_request.Status, same numbers. */
ABI_ENUM(MCRT_REQ_WAITING_IN_QUEUE, 1);
ABI_ENUM(MCRT_REQ_ACTIVE_AND_GENERATING_TOKENS, 2);
ABI_ENUM(MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS, 3);
ABI_ENUM(MCRT_REQ_COMPLETED, 4);
ABI_ENUM(MCRT_REQ_FAILED, 5);
ABI_ENUM(MCRT_FINISH_NONE, 0);
ABI_ENUM(MCRT_FINISH_LENGTH, 1);
ABI_ENUM(MCRT_FINISH_EOD, 2);
ABI_ENUM(MCRT_FINISH_STOP, 3);
ABI_ENUM(MCRT_FINISH_ERROR, 4);
ABI_ENUM(MCRT_FINISH_CANCELLED, 5);
ABI_ENUM(MCRT_UPDATE_STATUS, 1);
ABI_ENUM(MCRT_UPDATE_PROMPT_TOKENS, 2);
ABI_ENUM(MCRT_UPDATE_PROMPT_LOGPROBS, 3);
ABI_ENUM(MCRT_UPDATE_TOKENS, 4);
ABI_ENUM(MCRT_UPDATE_FINISH, 5);
ABI_ENUM(MCRT_UPDATE_SEGMENTS, 6);
ABI_ENUM(MCRT_UPDATE_TOP_LOGPROBS, 7);

ABI_ENUM(MCRT_LOG_ERROR, 1);
ABI_ENUM(MCRT_LOG_WARN, 2);
ABI_ENUM(MCRT_LOG_INFO, 3);
ABI_ENUM(MCRT_LOG_DEBUG, 4);
ABI_ENUM(MCRT_LOG_TRACE, 5);

/* ---- Struct layouts (LP64) ---------------------------------------------- */

#if UINTPTR_MAX == 0xffffffffffffffffu && SIZE_MAX == 0xffffffffffffffffu

/* mcrt_plugin_entry (mcrt/plugin.h) */
ABI_FIELD(mcrt_plugin_entry, abi_major, 0, uint16_t);
ABI_FIELD(mcrt_plugin_entry, abi_minor, 2, uint16_t);
ABI_FIELD(mcrt_plugin_entry, struct_size, 4, uint32_t);
ABI_FIELD(mcrt_plugin_entry, kind, 8, uint32_t);
ABI_FIELD(mcrt_plugin_entry, flags, 12, uint32_t);
ABI_FIELD(mcrt_plugin_entry, name, 16, const char *);
ABI_FIELD(mcrt_plugin_entry, version, 24, const char *);
ABI_FIELD(mcrt_plugin_entry, description, 32, const char *);
ABI_FIELD(mcrt_plugin_entry, config_keys, 40, const mcrt_config_key *);
ABI_FIELD(mcrt_plugin_entry, probe, 48,
          int32_t (*)(const mcrt_host *, const mcrt_config *, char *, size_t));
ABI_FIELD(mcrt_plugin_entry, init, 56, mcrt_status (*)(const mcrt_host *));
ABI_FIELD(mcrt_plugin_entry, fini, 64, void (*)(void));
ABI_FIELD(mcrt_plugin_entry, get_iface, 72, const void *(*)(const char *));
ABI_SIZE(mcrt_plugin_entry, 80);

/* mcrt_host (mcrt/host.h) */
ABI_FIELD(mcrt_host, abi_major, 0, uint16_t);
ABI_FIELD(mcrt_host, abi_minor, 2, uint16_t);
ABI_FIELD(mcrt_host, struct_size, 4, uint32_t);
ABI_FIELD(mcrt_host, host_data, 8, void *);
ABI_FIELD(mcrt_host, log, 16, void (*)(const mcrt_host *, int32_t, const char *, ...));
ABI_FIELD(mcrt_host, logv, 24, void (*)(const mcrt_host *, int32_t, const char *, va_list));
ABI_FIELD(mcrt_host, alloc, 32, void *(*)(const mcrt_host *, size_t, size_t));
ABI_FIELD(mcrt_host, free, 40, void (*)(const mcrt_host *, void *));
ABI_FIELD(mcrt_host, config_bool, 48,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, const char *, bool *));
ABI_FIELD(mcrt_host, config_int, 56,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, const char *, int64_t *));
ABI_FIELD(mcrt_host, config_float, 64,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, const char *, double *));
ABI_FIELD(mcrt_host, config_string, 72,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, const char *, const char **));
ABI_FIELD(mcrt_host, config_list_size, 80,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, const char *, size_t *));
ABI_FIELD(mcrt_host, config_list_item, 88,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, const char *, size_t,
                  const char **));
ABI_FIELD(mcrt_host, clock_ns, 96, uint64_t (*)(const mcrt_host *));
ABI_FIELD(mcrt_host, get_ext, 104, const void *(*)(const mcrt_host *, const char *));
ABI_SIZE(mcrt_host, 112);

/* mcrt_pipeline_services (mcrt/host.h) */
ABI_FIELD(mcrt_pipeline_services, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_pipeline_services, tokenizer_info, 8,
          mcrt_status (*)(const mcrt_host *, mcrt_tokenizer_info *));
ABI_FIELD(mcrt_pipeline_services, tokenize, 16,
          mcrt_status (*)(const mcrt_host *, const char *, size_t, int32_t *, size_t, size_t *));
ABI_FIELD(mcrt_pipeline_services, detokenize, 24,
          mcrt_status (*)(const mcrt_host *, const int32_t *, size_t, char *, size_t, size_t *));
ABI_FIELD(mcrt_pipeline_services, token_bytes, 32,
          mcrt_status (*)(const mcrt_host *, int32_t, char *, size_t, size_t *));
ABI_FIELD(mcrt_pipeline_services, model_info, 40,
          mcrt_status (*)(const mcrt_host *, mcrt_model_info *));
ABI_FIELD(mcrt_pipeline_services, model_step, 48,
          mcrt_status (*)(const mcrt_host *, const mcrt_step_batch *, float *));
ABI_FIELD(mcrt_pipeline_services, kv_alloc, 56,
          mcrt_status (*)(const mcrt_host *, uint32_t, int32_t *));
ABI_FIELD(mcrt_pipeline_services, kv_free, 64,
          void (*)(const mcrt_host *, const int32_t *, uint32_t));
ABI_FIELD(mcrt_pipeline_services, kv_free_blocks, 72, uint32_t (*)(const mcrt_host *));
ABI_FIELD(mcrt_pipeline_services, sample, 80,
          mcrt_status (*)(const mcrt_host *, const mcrt_sample_batch *, int32_t *, float *));
ABI_FIELD(mcrt_pipeline_services, sampler_validate, 88,
          mcrt_status (*)(const mcrt_host *, const mcrt_sampling_params *));
ABI_FIELD(mcrt_pipeline_services, controller_generate_static, 96,
          mcrt_status (*)(const mcrt_host *, mcrt_request *const *, size_t));
ABI_FIELD(mcrt_pipeline_services, request_update, 104,
          mcrt_status (*)(const mcrt_host *, mcrt_request *, const mcrt_request_update *));
ABI_SIZE(mcrt_pipeline_services, 112);

/* mcrt_config_key (mcrt/config.h) */
ABI_FIELD(mcrt_config_key, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_config_key, type, 4, uint32_t);
ABI_FIELD(mcrt_config_key, flags, 8, uint32_t);
ABI_FIELD(mcrt_config_key, reserved, 12, uint32_t);
ABI_FIELD(mcrt_config_key, name, 16, const char *);
ABI_FIELD(mcrt_config_key, default_value, 24, const char *);
ABI_FIELD(mcrt_config_key, choices, 32, const char *);
ABI_FIELD(mcrt_config_key, min, 40, double);
ABI_FIELD(mcrt_config_key, max, 48, double);
ABI_FIELD(mcrt_config_key, doc, 56, const char *);
ABI_SIZE(mcrt_config_key, 64);

/* mcrt_tensor (mcrt/tensor.h) */
ABI_FIELD(mcrt_tensor, data, 0, void *);
ABI_FIELD(mcrt_tensor, dtype, 8, int32_t);
ABI_FIELD(mcrt_tensor, device, 12, int32_t);
ABI_FIELD(mcrt_tensor, device_index, 16, int32_t);
ABI_FIELD(mcrt_tensor, ndim, 20, int32_t);
ABI_FIELD(mcrt_tensor, shape, 24, int64_t *);
ABI_FIELD(mcrt_tensor, stride, 56, int64_t *);
ABI_SIZE(mcrt_tensor, 88);

/* mcrt_sampling_params (mcrt/params.h) */
ABI_FIELD(mcrt_sampling_params, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_sampling_params, compat, 4, uint32_t);
ABI_FIELD(mcrt_sampling_params, temperature, 8, float);
ABI_FIELD(mcrt_sampling_params, top_k, 12, int32_t);
ABI_FIELD(mcrt_sampling_params, top_p, 16, float);
ABI_FIELD(mcrt_sampling_params, min_p, 20, float);
ABI_FIELD(mcrt_sampling_params, repetition_penalty, 24, float);
ABI_FIELD(mcrt_sampling_params, presence_penalty, 28, float);
ABI_FIELD(mcrt_sampling_params, frequency_penalty, 32, float);
ABI_FIELD(mcrt_sampling_params, num_tokens_to_generate, 36, int32_t);
ABI_FIELD(mcrt_sampling_params, seed, 40, int64_t);
ABI_FIELD(mcrt_sampling_params, return_log_probs, 48, uint8_t);
ABI_FIELD(mcrt_sampling_params, return_segments, 49, uint8_t);
ABI_FIELD(mcrt_sampling_params, ignore_eos, 50, uint8_t);
ABI_FIELD(mcrt_sampling_params, add_bos, 51, uint8_t);
ABI_FIELD(mcrt_sampling_params, top_n_logprobs, 52, int32_t);
ABI_FIELD(mcrt_sampling_params, stop, 56, const char *const *);
ABI_FIELD(mcrt_sampling_params, n_stop, 64, uint32_t);
ABI_FIELD(mcrt_sampling_params, n_stop_token_ids, 68, uint32_t);
ABI_FIELD(mcrt_sampling_params, stop_token_ids, 72, const int32_t *);
ABI_FIELD(mcrt_sampling_params, logit_bias_ids, 80, const int32_t *);
ABI_FIELD(mcrt_sampling_params, logit_bias_values, 88, const float *);
ABI_FIELD(mcrt_sampling_params, n_logit_bias, 96, uint32_t);
ABI_FIELD(mcrt_sampling_params, reserved, 100, uint32_t);
ABI_SIZE(mcrt_sampling_params, 104);

/* mcrt_request (mcrt/request.h) */
ABI_FIELD(mcrt_request, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_request, status, 4, uint32_t);
ABI_FIELD(mcrt_request, id, 8, uint64_t);
ABI_FIELD(mcrt_request, prompt, 16, const char *);
ABI_FIELD(mcrt_request, prompt_len, 24, size_t);
ABI_FIELD(mcrt_request, params, 32, const mcrt_sampling_params *);
ABI_FIELD(mcrt_request, arrival_ns, 40, uint64_t);
ABI_FIELD(mcrt_request, prompt_tokens, 48, const int32_t *);
ABI_FIELD(mcrt_request, n_prompt_tokens, 56, size_t);
ABI_FIELD(mcrt_request, engine_data, 64, void *);
ABI_SIZE(mcrt_request, 72);

/* mcrt_request_update (mcrt/request.h) */
ABI_FIELD(mcrt_request_update, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_request_update, kind, 4, uint32_t);
ABI_FIELD(mcrt_request_update, status, 8, uint32_t);
ABI_FIELD(mcrt_request_update, finish_reason, 12, uint32_t);
ABI_FIELD(mcrt_request_update, tokens, 16, const int32_t *);
ABI_FIELD(mcrt_request_update, logprobs, 24, const float *);
ABI_FIELD(mcrt_request_update, n, 32, size_t);
ABI_FIELD(mcrt_request_update, text, 40, const char *);
ABI_FIELD(mcrt_request_update, text_len, 48, size_t);
ABI_FIELD(mcrt_request_update, error, 56, const char *);
ABI_FIELD(mcrt_request_update, lens, 64, const size_t *);
ABI_SIZE(mcrt_request_update, 72);

/* mcrt_rank_info (mcrt/model.h) */
ABI_FIELD(mcrt_rank_info, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_rank_info, world_size, 4, int32_t);
ABI_FIELD(mcrt_rank_info, world_rank, 8, int32_t);
ABI_FIELD(mcrt_rank_info, tp_size, 12, int32_t);
ABI_FIELD(mcrt_rank_info, tp_rank, 16, int32_t);
ABI_FIELD(mcrt_rank_info, pp_size, 20, int32_t);
ABI_FIELD(mcrt_rank_info, pp_rank, 24, int32_t);
ABI_FIELD(mcrt_rank_info, device, 28, int32_t);
ABI_FIELD(mcrt_rank_info, device_index, 32, int32_t);
ABI_FIELD(mcrt_rank_info, threads, 36, int32_t);
ABI_SIZE(mcrt_rank_info, 40);

/* mcrt_model_info (mcrt/model.h) */
ABI_FIELD(mcrt_model_info, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_model_info, vocab_size, 4, int32_t);
ABI_FIELD(mcrt_model_info, padded_vocab_size, 8, int32_t);
ABI_FIELD(mcrt_model_info, max_sequence_length, 12, int32_t);
ABI_FIELD(mcrt_model_info, hidden_size, 16, int32_t);
ABI_FIELD(mcrt_model_info, num_layers, 20, int32_t);
ABI_FIELD(mcrt_model_info, kv_block_size, 24, int32_t);
ABI_FIELD(mcrt_model_info, kv_num_blocks, 28, int32_t);
ABI_FIELD(mcrt_model_info, activation_dtype, 32, int32_t);
ABI_SIZE(mcrt_model_info, 36);

/* mcrt_step_batch (mcrt/model.h) */
ABI_FIELD(mcrt_step_batch, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_step_batch, n_tokens, 4, uint32_t);
ABI_FIELD(mcrt_step_batch, n_seqs, 8, uint32_t);
ABI_FIELD(mcrt_step_batch, n_logits, 12, uint32_t);
ABI_FIELD(mcrt_step_batch, tokens, 16, const int32_t *);
ABI_FIELD(mcrt_step_batch, positions, 24, const int32_t *);
ABI_FIELD(mcrt_step_batch, seq_index, 32, const int32_t *);
ABI_FIELD(mcrt_step_batch, want_logits, 40, const uint8_t *);
ABI_FIELD(mcrt_step_batch, context_len, 48, const int32_t *);
ABI_FIELD(mcrt_step_batch, block_tables, 56, const int32_t *const *);
ABI_FIELD(mcrt_step_batch, n_blocks, 64, const int32_t *);
ABI_SIZE(mcrt_step_batch, 72);

/* mcrt_step_io (mcrt/model.h) */
ABI_FIELD(mcrt_step_io, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_step_io, reserved, 4, uint32_t);
ABI_FIELD(mcrt_step_io, hidden_in, 8, const mcrt_tensor *);
ABI_FIELD(mcrt_step_io, hidden_out, 16, mcrt_tensor *);
ABI_FIELD(mcrt_step_io, logits, 24, mcrt_tensor *);
ABI_SIZE(mcrt_step_io, 32);

/* mcrt_model_iface (mcrt/model.h) */
ABI_FIELD(mcrt_model_iface, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_model_iface, create, 8,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, const mcrt_rank_info *, void **));
ABI_FIELD(mcrt_model_iface, destroy, 16, void (*)(void *));
ABI_FIELD(mcrt_model_iface, info, 24, mcrt_status (*)(void *, mcrt_model_info *));
ABI_FIELD(mcrt_model_iface, step, 32,
          mcrt_status (*)(void *, const mcrt_step_batch *, const mcrt_step_io *));
ABI_SIZE(mcrt_model_iface, 40);

/* mcrt_sample_batch (mcrt/sampler.h) */
ABI_FIELD(mcrt_sample_batch, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_sample_batch, n_rows, 4, uint32_t);
ABI_FIELD(mcrt_sample_batch, vocab_size, 8, int32_t);
ABI_FIELD(mcrt_sample_batch, padded_vocab_size, 12, int32_t);
ABI_FIELD(mcrt_sample_batch, logits, 16, const float *);
ABI_FIELD(mcrt_sample_batch, params, 24, const mcrt_sampling_params *const *);
ABI_FIELD(mcrt_sample_batch, history, 32, const int32_t *const *);
ABI_FIELD(mcrt_sample_batch, history_len, 40, const size_t *);
ABI_FIELD(mcrt_sample_batch, draw_index, 48, const uint64_t *);
ABI_SIZE(mcrt_sample_batch, 56);

/* mcrt_sampler_iface (mcrt/sampler.h) */
ABI_FIELD(mcrt_sampler_iface, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_sampler_iface, create, 8,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, void **));
ABI_FIELD(mcrt_sampler_iface, destroy, 16, void (*)(void *));
ABI_FIELD(mcrt_sampler_iface, validate, 24,
          mcrt_status (*)(void *, const mcrt_sampling_params *, int32_t));
ABI_FIELD(mcrt_sampler_iface, sample, 32,
          mcrt_status (*)(void *, const mcrt_sample_batch *, int32_t *, float *));
ABI_SIZE(mcrt_sampler_iface, 40);

/* mcrt_tokenizer_info (mcrt/tokenizer.h) */
ABI_FIELD(mcrt_tokenizer_info, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_tokenizer_info, vocab_size, 4, int32_t);
ABI_FIELD(mcrt_tokenizer_info, eod, 8, int32_t);
ABI_FIELD(mcrt_tokenizer_info, bos, 12, int32_t);
ABI_FIELD(mcrt_tokenizer_info, pad, 16, int32_t);
ABI_FIELD(mcrt_tokenizer_info, reserved, 20, int32_t);
ABI_SIZE(mcrt_tokenizer_info, 24);

/* mcrt_tokenizer_iface (mcrt/tokenizer.h) */
ABI_FIELD(mcrt_tokenizer_iface, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_tokenizer_iface, create, 8,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, void **));
ABI_FIELD(mcrt_tokenizer_iface, destroy, 16, void (*)(void *));
ABI_FIELD(mcrt_tokenizer_iface, info, 24, mcrt_status (*)(void *, mcrt_tokenizer_info *));
ABI_FIELD(mcrt_tokenizer_iface, encode, 32,
          mcrt_status (*)(void *, const char *, size_t, int32_t *, size_t, size_t *));
ABI_FIELD(mcrt_tokenizer_iface, decode, 40,
          mcrt_status (*)(void *, const int32_t *, size_t, char *, size_t, size_t *));
ABI_FIELD(mcrt_tokenizer_iface, token_bytes, 48,
          mcrt_status (*)(void *, int32_t, char *, size_t, size_t *));
ABI_SIZE(mcrt_tokenizer_iface, 56);

/* mcrt_controller_iface (mcrt/controller.h) */
ABI_FIELD(mcrt_controller_iface, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_controller_iface, create, 8,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, void **));
ABI_FIELD(mcrt_controller_iface, destroy, 16, void (*)(void *));
ABI_FIELD(mcrt_controller_iface, generate_static, 24,
          mcrt_status (*)(void *, mcrt_request *const *, size_t));
ABI_SIZE(mcrt_controller_iface, 32);

/* mcrt_engine_iface (mcrt/engine.h) */
ABI_FIELD(mcrt_engine_iface, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_engine_iface, create, 8,
          mcrt_status (*)(const mcrt_host *, const mcrt_config *, void **));
ABI_FIELD(mcrt_engine_iface, destroy, 16, void (*)(void *));
ABI_FIELD(mcrt_engine_iface, submit, 24, mcrt_status (*)(void *, mcrt_request *));
ABI_FIELD(mcrt_engine_iface, run, 32, mcrt_status (*)(void *));
ABI_SIZE(mcrt_engine_iface, 40);

/* mcrt_tensor_info (mcrt/checkpoint.h) */
ABI_FIELD(mcrt_tensor_info, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_tensor_info, dtype, 4, int32_t);
ABI_FIELD(mcrt_tensor_info, ndim, 8, int32_t);
ABI_FIELD(mcrt_tensor_info, reserved, 12, int32_t);
ABI_FIELD(mcrt_tensor_info, shape, 16, int64_t *);
ABI_FIELD(mcrt_tensor_info, name, 80, const char *);
ABI_FIELD(mcrt_tensor_info, nbytes, 88, uint64_t);
ABI_SIZE(mcrt_tensor_info, 96);

/* mcrt_checkpoint_services (mcrt/checkpoint.h) */
ABI_FIELD(mcrt_checkpoint_services, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_checkpoint_services, open, 8,
          mcrt_status (*)(const mcrt_host *, const char *, mcrt_checkpoint **));
ABI_FIELD(mcrt_checkpoint_services, close, 16, void (*)(const mcrt_host *, mcrt_checkpoint *));
ABI_FIELD(mcrt_checkpoint_services, count, 24,
          size_t (*)(const mcrt_host *, const mcrt_checkpoint *));
ABI_FIELD(mcrt_checkpoint_services, info_at, 32,
          mcrt_status (*)(const mcrt_host *, const mcrt_checkpoint *, size_t, mcrt_tensor_info *));
ABI_FIELD(mcrt_checkpoint_services, find, 40,
          mcrt_status (*)(const mcrt_host *, const mcrt_checkpoint *, const char *,
                  mcrt_tensor_info *));
ABI_FIELD(mcrt_checkpoint_services, read, 48,
          mcrt_status (*)(const mcrt_host *, const mcrt_checkpoint *, const char *, int32_t,
                  int64_t, int64_t, int32_t, void *, size_t));
ABI_FIELD(mcrt_checkpoint_services, view, 56,
          mcrt_status (*)(const mcrt_host *, const mcrt_checkpoint *, const char *,
                  const void **, mcrt_tensor_info *));
ABI_FIELD(mcrt_checkpoint_services, arg, 64,
          mcrt_status (*)(const mcrt_host *, const mcrt_checkpoint *, const char *,
                  mcrt_checkpoint_arg *));
/* appended before the 1.0 release (docs/decisions.md) */
ABI_FIELD(mcrt_checkpoint_services, open_ex, 72,
          mcrt_status (*)(const mcrt_host *, const char *, const mcrt_checkpoint_open_options *,
                          mcrt_checkpoint **));
ABI_SIZE(mcrt_checkpoint_services, 80);

/* mcrt_checkpoint_arg (mcrt/checkpoint.h) */
ABI_FIELD(mcrt_checkpoint_arg, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_checkpoint_arg, type, 4, int32_t);
ABI_FIELD(mcrt_checkpoint_arg, i, 8, int64_t);
ABI_FIELD(mcrt_checkpoint_arg, f, 16, double);
ABI_FIELD(mcrt_checkpoint_arg, s, 24, const char *);
ABI_FIELD(mcrt_checkpoint_arg, source, 32, const char *);
/* appended before the 1.0 release (docs/decisions.md) */
ABI_FIELD(mcrt_checkpoint_arg, origin, 40, int32_t);
ABI_SIZE(mcrt_checkpoint_arg, 48);
ABI_ENUM(MCRT_CHECKPOINT_ARG_MODEL_CONFIG, 0);
ABI_ENUM(MCRT_CHECKPOINT_ARG_TRAINING_ARGS, 1);

/* mcrt_checkpoint_open_options (mcrt/checkpoint.h) */
ABI_FIELD(mcrt_checkpoint_open_options, struct_size, 0, uint32_t);
ABI_FIELD(mcrt_checkpoint_open_options, has_step, 4, int32_t);
ABI_FIELD(mcrt_checkpoint_open_options, step, 8, int64_t);
ABI_SIZE(mcrt_checkpoint_open_options, 16);
#endif /* LP64 */

ABI_ENUM(MCRT_CHECKPOINT_MAX_DIMS, 8);

/* The string ids cannot be checked at compile time in C11; check them here. */
static int check_id(const char *got, const char *want)
{
    if (strcmp(got, want) == 0)
        return 0;
    fprintf(stderr, "layout: id \"%s\" changed, want \"%s\" (a changed id is a new interface)\n",
            got, want);
    return 1;
}

int main(void)
{
    int bad = 0;
    bad += check_id(MCRT_IFACE_ENGINE, "mcrt.engine/1");
    bad += check_id(MCRT_IFACE_CONTROLLER, "mcrt.controller/1");
    bad += check_id(MCRT_IFACE_MODEL, "mcrt.model/1");
    bad += check_id(MCRT_IFACE_SAMPLER, "mcrt.sampler/1");
    bad += check_id(MCRT_IFACE_TOKENIZER, "mcrt.tokenizer/1");
    bad += check_id(MCRT_HOST_EXT_PIPELINE, "mcrt.host.pipeline/1");
    bad += check_id(MCRT_HOST_EXT_CHECKPOINT, "mcrt.host.checkpoint/1");
    return bad == 0 ? 0 : 1;
}
