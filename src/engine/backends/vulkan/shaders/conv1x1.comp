// 1x1 convolution, stride 1: conv_block.glsl with 8 columns x 8 output
// channels per invocation.
#version 450
#extension GL_GOOGLE_include_directive : require
#define K 1
#define XB 8
#define OCB 8
#include "conv_block.glsl"
