#!/usr/bin/env bash
# Server video jobs on 1 lane against 2 (issue 19): the wall time of one video
# job — POST /upscale/video until its result is written — on `tessera serve`
# with --cpu-lanes 1 and with --cpu-lanes 2, each lane's segments run with
# --worker-threads 1 (on 2 cores one lane with two threads already uses both;
# the question is whether the segments of one video really spread over lanes).
#
#   make bench-video-lanes   (or: bench/video_lanes.sh [--frames N] [--size WxH] [--rounds R] [--tessera PATH])
#
# The clip is made with the ffmpeg program (testsrc2, H.264 with a keyframe
# every 6 frames so the server can cut it in 2 segments per lane). The two
# settings are timed in turn, --rounds times, each on a fresh server and data
# folder; medians and their ratio are printed.
set -euo pipefail

frames=24
size=854x480
rounds=2
model=realesr-animevideov3-x2
tessera=build/tessera
while [ $# -gt 0 ]; do
  case "$1" in
    --frames) frames=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --tessera) tessera=$2; shift 2 ;;
    *) echo "video_lanes: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -x "$tessera" ] || { echo "video_lanes: no $tessera (make build)" >&2; exit 1; }

work=$(mktemp -d /tmp/tessera-video-lanes.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ffmpeg -y -hide_banner -loglevel error -nostdin -f lavfi -i "testsrc2=size=$size:rate=25" \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -frames:v "$frames" -c:v libx264 -pix_fmt yuv420p \
  -g 6 -keyint_min 6 -sc_threshold 0 -c:a aac -shortest "$work/clip.mp4"

# One video job on a fresh server with $1 lanes; prints its wall time in seconds.
time_one() {
  local lanes=$1 data="$work/data-$1-$2"
  mkdir -p "$data"
  # CPU lanes even on a machine with a GPU.
  env -u GPU_IDS NVIDIA_VISIBLE_DEVICES=none "$tessera" serve --port 0 --port-file "$data/port" --data-dir "$data" \
    --cpu-lanes "$lanes" --worker-threads 1 >"$data/server.log" 2>&1 &
  server_pid=$!
  # The server writes the port file once it listens; it may die instead.
  while [ ! -s "$data/port" ]; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
    sleep 0.1
  done
  local port
  port=$(cat "$data/port")
  local start end answer id
  start=$(date +%s.%N)
  answer=$(curl -sS --fail-with-body --data-binary @"$work/clip.mp4" \
    "http://127.0.0.1:$port/upscale/video?model=$model&filename=out.mp4")
  id=$(printf '%s' "$answer" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  [ -n "$id" ] || { echo "video_lanes: no job id in $answer" >&2; exit 1; }
  # The job's event stream ends once the job finished.
  curl -sS -N "http://127.0.0.1:$port/events?job_id=$id" >/dev/null
  end=$(date +%s.%N)
  local status
  status=$(curl -sS "http://127.0.0.1:$port/status/$id")
  case "$status" in
    *'"status":"success"'*) ;;
    *) echo "video_lanes: the job did not succeed: $status" >&2; exit 1 ;;
  esac
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  echo "$end - $start" | bc -l
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

one=()
two=()
for round in $(seq 1 "$rounds"); do
  one+=("$(time_one 1 "$round")")
  two+=("$(time_one 2 "$round")")
  printf 'round %d: 1 lane %.1f s, 2 lanes %.1f s\n' "$round" "${one[-1]}" "${two[-1]}"
done
m1=$(printf '%s\n' "${one[@]}" | median)
m2=$(printf '%s\n' "${two[@]}" | median)
printf 'video_lanes model=%s size=%s frames=%s rounds=%s cpu="%s"\n' "$model" "$size" "$frames" "$rounds" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf 'median 1 lane %.1f s (%.2f fps), 2 lanes %.1f s (%.2f fps), speedup %.2f\n' "$m1" "$(echo "$frames / $m1" | bc -l)" \
  "$m2" "$(echo "$frames / $m2" | bc -l)" "$(echo "$m1 / $m2" | bc -l)"
