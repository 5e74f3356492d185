#!/usr/bin/env bash
# Run on a machine WITH network (the dev box), in the repo root. Fills .whl/ with what an offline
# CUDA machine lacks, for scripts/setup_cuda_offline.sh to install there:
#   - mamba-ssm as a pure-Python wheel: its Mamba-2 kernels are Triton, so the CUDA extension is
#     skipped (MAMBA_SKIP_CUDA_BUILD); MAMBA_FORCE_BUILD stops setup.py from trying to download a
#     prebuilt binary wheel. Needs torch importable here (no build isolation).
#   - gymnasium, stable-baselines3 (examples/rl_in_imagination.py) and the deps the CUDA image
#     lacks, as wheels for CPython 3.12 on manylinux x86_64 (the CUDA image's python3).
#   - LPIPS's weights (`worldsim fetch-lpips --float16`, 4.7 MiB: at float32's 9.4 they do not fit beside
#     the tree in the 64 MiB that travels), so evaluations there report LPIPS too.
# Usage: bash scripts/build_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"

MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
    python3 -m pip wheel --no-deps --no-build-isolation mamba-ssm==2.3.2.post1 -w .whl

# The CUDA image (python 3.12, torch 2.11) has numpy, typing-extensions, einops, safetensors,
# imageio, tqdm, triton; gymnasium, farama-notifications and stable-baselines3 are missing.
# stable-baselines3 imports cloudpickle at import time (gymnasium only for AsyncVectorEnv): the
# H100 image has it, but an image without it would fail, and the wheel is 22 KB. SB3 >= 2.9 needs
# neither pandas nor matplotlib to import PPO (now its "extra" deps, for its Monitor CSV reader and
# plotting helpers). All four wheels are pure Python (py3-none-any), under 1 MB in all.
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl gymnasium==1.4.0 farama-notifications==0.0.6 stable-baselines3==2.9.2 cloudpickle==3.1.3
python3 -m worldsim.cli fetch-lpips --float16 --out .whl/lpips_alex_v0.1.safetensors
ls -l .whl
