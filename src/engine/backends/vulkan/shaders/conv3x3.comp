// 3x3 convolution, stride 1, dilation 1: conv_block.glsl with 8 columns x 8
// output channels per invocation (the kernel of every convolution in the
// realesr-animevideov3 and most waifu2x/realcugan models).
#version 450
#extension GL_GOOGLE_include_directive : require
#define K 3
#define XB 8
#define OCB 8
#include "conv_block.glsl"
