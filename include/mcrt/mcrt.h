/*
 * mcrt/mcrt.h: everything a plugin author needs, in one include.
 */
#ifndef MCRT_MCRT_H
#define MCRT_MCRT_H

#include "mcrt/checkpoint.h" /* reading weights through the host */
#include "mcrt/config.h"     /* config key declarations */
#include "mcrt/controller.h" /* mcrt_controller_iface */
#include "mcrt/engine.h"     /* mcrt_engine_iface */
#include "mcrt/host.h"       /* mcrt_host, mcrt_pipeline_services */
#include "mcrt/model.h"      /* mcrt_model_iface, step batch, rank info */
#include "mcrt/params.h"     /* mcrt_sampling_params */
#include "mcrt/plugin.h"     /* mcrt_plugin_entry, MCRT_PLUGIN_DEFINE, versions */
#include "mcrt/request.h"    /* mcrt_request */
#include "mcrt/sampler.h"    /* mcrt_sampler_iface */
#include "mcrt/status.h"     /* mcrt_status */
#include "mcrt/tensor.h"     /* mcrt_tensor, dtypes */
#include "mcrt/tokenizer.h"  /* mcrt_tokenizer_iface */

#endif /* MCRT_MCRT_H */
