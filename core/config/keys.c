/*
 * core/config/keys.c: the sections of a pipeline YAML and the keys the core
 * itself declares in each (docs/config.md lists them for users). Plugin
 * sections (engine, controller, model, sampler, tokenizer) get the chosen
 * plugin's keys on top of these.
 */
#include <string.h>

#include "config/internal.h"

#define KEY MCRT_CONFIG_KEY
#define KEY_RANGE MCRT_CONFIG_KEY_RANGE
#define KEY_MIN MCRT_CONFIG_KEY_MIN
#define KEY_ENUM MCRT_CONFIG_KEY_ENUM

static const mcrt_config_key runtime_keys[] = {
    KEY_ENUM("log_level", "info", "error|warn|info|debug|trace",
             "how much to log on stderr"),
    KEY(MCRT_CFG_STRING_LIST, "plugin_dirs", NULL,
        "extra folders searched for plugins first, before MCRT_PLUGIN_PATH and the installed "
        "plugin folder (resolved like paths)"),
    KEY_MIN(MCRT_CFG_INT, "threads", "0", 0, "CPU threads per rank, 0 = all cores"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key parallel_keys[] = {
    KEY_RANGE(MCRT_CFG_INT, "tensor_model_parallel_size", "1", 1, 4096,
              "tensor-parallel ranks: each layer's weights are split across them"),
    KEY_RANGE(MCRT_CFG_INT, "pipeline_model_parallel_size", "1", 1, 4096,
              "pipeline-parallel stages: the layers are split into this many contiguous ranges"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key generation_keys[] = {
    KEY(MCRT_CFG_STRING_LIST, "prompts", NULL, "prompts to complete, one request each"),
    KEY(MCRT_CFG_PATH, "prompt_file", NULL,
        "text file of prompts, one per line (empty lines are skipped)"),
    KEY_MIN(MCRT_CFG_INT, "num_tokens_to_generate", "30", 0,
            "new tokens to generate per prompt (at most)"),
    KEY_RANGE(MCRT_CFG_FLOAT, "temperature", "1.0", 0, 100,
              "sampling temperature; 0 = greedy"),
    KEY_MIN(MCRT_CFG_INT, "top_k", "0", 0, "sample from the k most likely tokens; 0 = off"),
    KEY_RANGE(MCRT_CFG_FLOAT, "top_p", NULL, 0, 1,
              "nucleus sampling mass; unset = off (1.0 by default, 0.0 with compat: megatron)"),
    KEY_RANGE(MCRT_CFG_FLOAT, "min_p", "0", 0, 1,
              "drop tokens below min_p times the top token's probability; 0 = off"),
    KEY_MIN(MCRT_CFG_FLOAT, "repetition_penalty", "1.0", 0,
            "divide the logits of tokens already seen by this (> 0); 1 = off"),
    KEY_RANGE(MCRT_CFG_FLOAT, "presence_penalty", "0", -2, 2,
              "subtract this from the logits of tokens already generated; 0 = off"),
    KEY_RANGE(MCRT_CFG_FLOAT, "frequency_penalty", "0", -2, 2,
              "subtract this times the count of each token already generated; 0 = off"),
    KEY_MIN(MCRT_CFG_INT, "seed", "1234", -1,
            "random seed for sampling (Megatron's --seed default); -1 = nondeterministic"),
    KEY(MCRT_CFG_BOOL, "return_log_probs", "false",
        "return the log probability of every generated token"),
    KEY_RANGE(MCRT_CFG_INT, "top_n_logprobs", "0", 0, 20,
              "also return the n most likely tokens at each step with their log probabilities"),
    KEY(MCRT_CFG_BOOL, "return_segments", "false",
        "return the generated text split into tokens' text segments"),
    KEY(MCRT_CFG_STRING_LIST, "stop", NULL, "stop generating when one of these strings appears"),
    KEY(MCRT_CFG_BOOL, "ignore_eos", "false", "keep generating after the end-of-document token"),
    KEY(MCRT_CFG_BOOL, "add_bos", "false", "put the tokenizer's BOS token before each prompt"),
    KEY_ENUM("compat", "default", "default|megatron",
             "sampling semantics: default (OpenAI/vLLM) or megatron (Megatron-Core exactly)"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key output_keys[] = {
    KEY(MCRT_CFG_PATH, "path", NULL, "file to write the generations to; unset = standard output"),
    KEY_ENUM("format", "text", "text|json|jsonl",
             "text, one JSON document, or one JSON object per line"),
    KEY(MCRT_CFG_BOOL, "stream", "false", "print tokens as they are generated"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key engine_keys[] = {
    KEY(MCRT_CFG_STRING, "name", "auto", "engine plugin (static, dynamic); auto = best available"),
    KEY_RANGE(MCRT_CFG_INT, "max_batch_size", "8", 1, 65536,
              "most requests run together in one batch"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key controller_keys[] = {
    KEY(MCRT_CFG_STRING, "name", "auto", "controller plugin (simple); auto = best available"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key model_keys[] = {
    KEY(MCRT_CFG_STRING, "name", "auto", "model plugin (gpt); auto = best available"),
    KEY(MCRT_CFG_PATH, "load", NULL, "checkpoint folder or file (Megatron's --load)"),
    KEY(MCRT_CFG_BOOL, "use_checkpoint_args", "false",
        "take the model's hyper-parameters from a Megatron checkpoint's saved args, with "
        "Megatron's rules (docs/checkpoints.md)"),
    MCRT_CONFIG_KEY_MIN(MCRT_CFG_INT, "ckpt_step", NULL, 0,
        "iteration of a Megatron --load folder to open instead of the "
        "tracker's (Megatron's --ckpt-step)"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key sampler_keys[] = {
    KEY(MCRT_CFG_STRING, "name", "auto", "sampler plugin (default); auto = best available"),
    MCRT_CONFIG_KEY_END,
};

static const mcrt_config_key tokenizer_keys[] = {
    KEY(MCRT_CFG_STRING, "name", "auto", "tokenizer plugin (gpt2-bpe); auto = best available"),
    KEY(MCRT_CFG_STRING, "tokenizer_type", NULL,
        "Megatron's --tokenizer-type, e.g. GPT2BPETokenizer"),
    KEY(MCRT_CFG_PATH, "vocab_file", NULL, "vocabulary file (GPT-2: vocab.json)"),
    KEY(MCRT_CFG_PATH, "merge_file", NULL, "BPE merges file (GPT-2: merges.txt)"),
    MCRT_CONFIG_KEY_END,
};

static const char *const section_names[CFG_N_SECTIONS + 1] = {
    "runtime", "parallel", "generation", "output", "engine",
    "controller", "model", "sampler", "tokenizer", NULL,
};

static const mcrt_config_key *const section_keys[CFG_N_SECTIONS] = {
    runtime_keys, parallel_keys, generation_keys, output_keys, engine_keys,
    controller_keys, model_keys, sampler_keys, tokenizer_keys,
};

const char *const *cfg_section_names(void)
{
    return section_names;
}

int cfg_section_index(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < CFG_N_SECTIONS; i++)
        if (strcmp(section_names[i], name) == 0)
            return i;
    return -1;
}

bool cfg_section_is_plugin(const char *section)
{
    return cfg_section_index(section) >= 4;
}

const mcrt_config_key *cfg_core_keys(const char *section)
{
    int i = cfg_section_index(section);
    return i < 0 ? NULL : section_keys[i];
}

const mcrt_config_key *cfg_core_key(const char *section, const char *key)
{
    const mcrt_config_key *k = cfg_core_keys(section);
    if (!k || !key)
        return NULL;
    for (; k->name; k++)
        if (strcmp(k->name, key) == 0)
            return k;
    return NULL;
}

bool cfg_key_is_path_list(const char *section, const char *key)
{
    return strcmp(section, "runtime") == 0 && strcmp(key, "plugin_dirs") == 0;
}

bool cfg_key_min_exclusive(const char *section, const char *key)
{
    return strcmp(section, "generation") == 0 && strcmp(key, "repetition_penalty") == 0;
}
