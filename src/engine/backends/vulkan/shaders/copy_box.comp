// Copies a box of channels x rows x columns from one NCHW tensor into another,
// each at its own offsets (vulkan_kernels.h's CopyBoxPush): Crop (an offset in
// the source) and Concat (an offset in the destination).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#define COPY_DST_T act_t
#define COPY_STORE(v) (v)
#include "copy_box.glsl"
