// A tile's kept rectangle written into the output image (DeviceTiling::
// PlaceTiles, vulkan_tiling.cpp): copy_box.glsl from a batch of activations
// (fp32, or fp16 in the _fp16 variant) into an image, which is always fp32.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#define COPY_DST_T float
#define COPY_STORE(v) float(v)
#include "copy_box.glsl"
