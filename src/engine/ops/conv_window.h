// The ops' name for the Convolution / Deconvolution parameters, which the layer
// table reads in one place with ncnn's ids and defaults (ncnn/layer_params.h).
#pragma once

#include "engine/ncnn/layer_params.h"

namespace tessera::engine::ops {

using ConvWindow = ncnn::ConvParams;

}  // namespace tessera::engine::ops
