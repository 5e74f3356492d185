#!/usr/bin/env bash
# Prepare a CUDA machine that has torch and triton but no network (the device machines) for
# worldsim's CUDA path, from the wheels that scripts/build_wheels.sh put in .whl/:
#   - installs every wheel in .whl/ that this python can take (pure-Python, or built for its
#     CPython and platform), with --no-deps into TARGET, never touching the system's packages;
#   - writes an empty `selective_scan_cuda` module there when the real one is absent: mamba_ssm's
#     __init__ imports that Mamba-1 CUDA extension, which the pure-Python wheel lacks and worldsim
#     never calls; the Mamba-2 Triton kernels need no compiled code;
#   - checks that mamba-ssm's Mamba-2 kernels import;
#   - prints the `export PYTHONPATH=...` line (TARGET and this checkout) on stdout, all else on stderr,
#     and WORLDSIM_LPIPS_WEIGHTS's when .whl/ holds LPIPS's weights (evaluations then report LPIPS).
# Usage, from anywhere:  eval "$(bash scripts/setup_cuda_offline.sh [TARGET])"   (TARGET: /tmp/site)
# On failure it prints `false`, so `eval "$(...)" && next-command` stops there.
set -euo pipefail
fail() { echo "setup_cuda_offline: $*" >&2; echo false; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-/tmp/site}
python=${PYTHON:-python3}
mkdir -p "$target"

# Wheels this interpreter supports; of several versions of one project, the newest (pip refuses two).
mapfile -t wheels < <("$python" - "$repo/.whl" <<'EOF'
import pathlib, sys
try:
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename
except ImportError:
    from pip._vendor.packaging.tags import sys_tags
    from pip._vendor.packaging.utils import parse_wheel_filename
supported = set(sys_tags())
best = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name, version, _, tags = parse_wheel_filename(path.name)
    if not tags & supported:
        print(f"skipping {path.name}: not for this python/platform", file=sys.stderr)
    elif name not in best or version > best[name][0]:
        best[name] = (version, path)
for _, path in best.values():
    print(path)
EOF
)
[ ${#wheels[@]} -gt 0 ] || fail "no usable wheels in $repo/.whl: run scripts/build_wheels.sh on a machine with network, and carry .whl"
echo "installing into $target: ${wheels[*]##*/}" >&2
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$target" "${wheels[@]}" >&2 || fail "pip install failed"

if ! "$python" -c "import selective_scan_cuda" 2>/dev/null; then
    echo '"""Stand-in for mamba-ssm'"'"'s Mamba-1 CUDA extension, which worldsim never calls (scripts/setup_cuda_offline.sh)."""' \
        > "$target/selective_scan_cuda.py"
fi

export PYTHONPATH="$target:$repo${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "import mamba_ssm.ops.triton.ssd_combined, mamba_ssm.ops.triton.selective_state_update" >&2 \
    || fail "mamba-ssm's Triton kernels do not import (traceback above)"
echo "mamba-ssm $("$python" -c 'import mamba_ssm; print(mamba_ssm.__version__)') ready in $target" >&2
echo "export PYTHONPATH=$target:$repo\${PYTHONPATH:+:\$PYTHONPATH}"
lpips_weights="$repo/.whl/lpips_alex_v0.1.safetensors"
if [ -f "$lpips_weights" ]; then
    echo "export WORLDSIM_LPIPS_WEIGHTS=$lpips_weights"
else
    echo "no LPIPS weights in .whl/ (scripts/build_wheels.sh fetches them): evaluations will leave LPIPS out" >&2
fi
