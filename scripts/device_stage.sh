#!/usr/bin/env bash
# One training stage on a lent GPU machine (no network, commands of at most 10 minutes, files back
# through $OUT): train from a shipped checkpoint in the background, export, score, bring back.
#
# Here (the dev box), before the lease:
#   bash scripts/build_wheels.sh                     mamba-ssm, gymnasium and LPIPS's weights into .whl/
#   bash scripts/device_stage.sh pack checkpoints/NAME   -> .carry/NAME.tar.xz (xz -9e)
# What travels must stay under 64 MiB with the tree: move checkpoints/, benchmarks/results/ and
# BENCHMARKS.md out of the checkout for the lease and .whl/'s stable-baselines3 and cloudpickle wheels
# out of .whl/ (maze384's pack is ~60 MB), and name .whl and .carry in every call's `carry` (a call
# without them deletes them there). Then, on the device, each call within 30 s of the last:
#   bash scripts/device_stage.sh start CONFIG STEPS  set up, then in a setsid job: train CONFIG (its
#                                                    init_from is NAME, found in the carried pack)
#                                                    for STEPS steps, export, score (next frame,
#                                                    retrieval after 400 and 50, reasoning; then cue
#                                                    recall and a 10,000-frame rollout side by side)
#   bash scripts/device_stage.sh watch [SECONDS]     progress; returns after SECONDS (default 500), when
#                                                    the job reaches its next mark or when it has ended
#   bash scripts/device_stage.sh collect exp|logs    the exported checkpoint (5 fp16 shards of maze384
#                                                    fit one call), or the logs and scores, into $OUT
# The job's marks, with times, are in jobs.txt: started, trained, exported, scored, done.
# STAGE_DEVICE=cpu runs the same job on a CPU without the CUDA set-up (a dry run of the script).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${STAGE_DIR:-/tmp/stage}
device=${STAGE_DEVICE:-cuda}
usage() { sed -n '2,22p' "$0" >&2; exit 2; }

mark() { echo "$1 $(date -u +%H:%M:%S)" >> "$work/jobs.txt"; }
ws() { python3 -m worldsim.cli "$@"; }  # the checkout is on PYTHONPATH there, not installed

job() {  # CONFIG STEPS: everything after the set-up, in the background
    local config=$1 steps=$2 exp=$work/exp
    source "$work/env.sh"
    ws train --config "$config" --steps "$steps" --out "$work/run" --device "$device" > "$work/train.log" 2>&1
    mark trained
    python3 scripts/export_checkpoint.py "$work/run" "$exp" > "$work/export.log" 2>&1
    mark exported
    score() { ws eval --checkpoint "$exp" --device "$device" --out "$work/eval/$1" "${@:2}" > "$work/eval/$1.log" 2>&1; }
    mkdir -p "$work/eval"
    score next-frame --task next-frame --context 100 --generate 50 --episodes 8 --batch-size 8
    score retrieval --task retrieval --episodes 16 --batch-size 16
    score reasoning --task reasoning --episodes 16 --batch-size 16
    score retrieval_ctx50 --task retrieval --context 50 --episodes 16 --batch-size 16
    mark scored
    score recall --task recall --episodes 64 --batch-size 16 &
    python3 benchmarks/long_rollout.py --checkpoint "$exp" --device "$device" --episode 0 --frames 10000 \
        --out "$work/eval/long_rollout" > "$work/eval/long_rollout.log" 2>&1
    wait
    mark done
}

case ${1:-} in
pack)
    [ $# -eq 2 ] || usage
    src=$(realpath "$2") name=$(basename "$2")
    [ -f "$src/config.json" ] || { echo "device_stage: no checkpoint at $src" >&2; exit 1; }
    exclude=$(git -C "$repo" rev-parse --git-path info/exclude)
    grep -qxF '/.carry/' "$exclude" 2>/dev/null || echo '/.carry/' >> "$exclude"
    tmp=$(mktemp -d)
    mkdir -p "$tmp/$name" "$repo/.carry"
    cp "$src"/config.json "$src"/*.index.json "$src"/*.safetensors "$tmp/$name/"
    [ -f "$src/metrics.jsonl" ] && cp "$src/metrics.jsonl" "$tmp/$name/"  # the export continues its curve
    tar -cf - -C "$tmp" "$name" | xz -9e -T2 > "$repo/.carry/$name.tar.xz"
    rm -rf "$tmp"
    ls -l "$repo/.carry/$name.tar.xz"
    ;;
start)
    [ $# -eq 3 ] || usage
    config=$(realpath "$2") steps=$3
    mkdir -p "$work/checkpoints"
    setup="export PYTHONPATH=$repo"
    if [ "$device" = cuda ]; then
        setup=$(bash "$repo/scripts/setup_cuda_offline.sh" "$work/site")
        [ "$setup" != false ] || exit 1
    fi
    for pack in "$repo"/.carry/*.tar.xz; do
        [ -e "$pack" ] && tar -xJf "$pack" -C "$work/checkpoints"
    done
    # init_from names a shipped checkpoint: found among the unpacked ones
    printf '%s\nexport WORLDSIM_CHECKPOINTS=%s PYTHONUNBUFFERED=1\ncd %s\n' "$setup" "$work/checkpoints" "$repo" \
        > "$work/env.sh"
    mark started
    if [ "$device" = cuda ]; then
        setsid nohup nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 30 \
            > "$work/smi.log" 2>&1 < /dev/null &
    fi
    setsid nohup bash "$0" job "$config" "$steps" > "$work/job.log" 2>&1 < /dev/null &
    echo $! > "$work/job.pid"
    echo "started: $config for $steps steps; logs in $work"
    ;;
job)
    job "$2" "$3"
    ;;
watch)
    limit=${2:-500} start=$SECONDS marks=$(wc -l < "$work/jobs.txt")
    while [ $((SECONDS - start)) -lt "$limit" ] && [ "$(wc -l < "$work/jobs.txt")" -eq "$marks" ] \
          && kill -0 "$(cat "$work/job.pid")" 2>/dev/null; do
        sleep 10
    done
    kill -0 "$(cat "$work/job.pid")" 2>/dev/null || echo "the job has ended"
    cat "$work/jobs.txt"
    tail -n 3 "$work/train.log" 2>/dev/null | tr '\r' '\n' | tail -n 3
    tail -n 5 "$work/job.log"
    ;;
collect)
    [ $# -eq 2 ] && [ -n "${OUT:-}" ] || usage
    case $2 in
    exp) cp "$work"/exp/config.json "$work"/exp/*.index.json "$work"/exp/*.safetensors "$work"/exp/metrics.jsonl "$OUT/" ;;
    logs) tar -czf "$OUT/logs.tar.gz" -C "$work" --exclude='step-*' --exclude=exp --exclude='*.safetensors' \
              --exclude=site --exclude=checkpoints . ;;
    *) usage ;;
    esac
    chmod 644 "$OUT"/*  # checkpoint shards are written private (atomically, via a temporary file)
    ls -l "$OUT"
    ;;
*) usage ;;
esac
