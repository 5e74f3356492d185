"""Provenance: every JSON and PNG the evaluation and bench commands write says how it was made.

A result without its command line, config, weights, machine and date cannot be reproduced or
compared, so `provenance()` gathers them once per run and `write_json` / `save_figure` attach
them: as a top-level "provenance" key in JSON, as a PNG text chunk ("worldsim-provenance",
read back with PIL: `Image.open(path).text`) plus a one-line footer drawn on the figure.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import worldsim

PNG_KEY = "worldsim-provenance"


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """sha256 over a checkpoint's safetensors files (names and bytes, in name order): the
    identity of the weights, independent of where the directory lives or its JSON formatting."""
    h = hashlib.sha256()
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no .safetensors files to hash")
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def command_line(args: argparse.Namespace) -> str:
    """The parsed arguments as one `worldsim COMMAND --opt value ...` line, defaults included, so
    the run can be repeated even after a default changes (sys.argv is recorded beside it).
    Scripts without a `command` (benchmarks/) are written as `python SCRIPT --opt value ...`."""
    parts = ["worldsim", args.command] if hasattr(args, "command") else ["python", sys.argv[0]]
    for key, value in sorted(vars(args).items()):
        if key == "command" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return shlex.join(parts)


def device_description(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine()
    try:  # the CPU model name is only in /proc on Linux
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{device} ({cpu}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"


def git_commit() -> str | None:
    """HEAD of the worldsim source tree, '+dirty' when it has uncommitted changes; None outside git."""
    root = Path(worldsim.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def provenance(args: argparse.Namespace | None, device, config: dict | None = None,
               checkpoints: dict[str, str | os.PathLike] | None = None) -> dict:
    """Everything needed to repeat a run. `checkpoints`: label -> checkpoint directory."""
    return {
        "command": command_line(args) if args is not None else None,
        "argv": list(sys.argv),
        "config": config,
        "checkpoints": {name: {"path": str(p), "sha256": checkpoint_sha256(p)} for name, p in (checkpoints or {}).items()},
        "device": device_description(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "worldsim": worldsim.__version__,
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def rounded(value):
    """`value` with every float below 1e6 cut to 6 significant digits (larger ones -- FLOP counts,
    timestamps -- keep all theirs): per-frame metrics stored at float64's 17 digits double the size
    of the results kept in the repository, for digits far below anything read from them."""
    if isinstance(value, float):
        return float(f"{value:.6g}") if abs(value) < 1e6 else value
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def write_json(path: str | os.PathLike, payload: dict, prov: dict) -> Path:
    """payload plus a "provenance" key, strict JSON (NaN/inf are bugs here: PSNR is capped),
    floats `rounded`, compact: per-frame results are committed, and every byte of the tree travels
    to the GPU machines, whose limit (64 MiB) the tree nears (indented, they were 1.7x the size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rounded({"provenance": prov, **payload}), separators=(",", ":"), allow_nan=False)
    path.write_text(text + "\n")
    return path


def save_figure(fig, path: str | os.PathLike, prov: dict) -> Path:
    """Save a matplotlib figure (constrained layout) as PNG with the provenance in a text chunk
    and as a footer below the axes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = ", ".join(f"{k} {v['sha256'][:12]}" for k, v in prov["checkpoints"].items()) or "random init"
    command = prov["command"] or " ".join(prov["argv"])
    footer = f"{command} | {checkpoint} | {prov['device']} | torch {prov['torch']} | {prov['date']}"
    width, height = fig.get_size_inches()
    lines = textwrap.wrap(footer, width=int(width * 24))  # ~24 characters per inch at 5 pt
    reserved = (len(lines) * 7 / 72 + 0.05) / height  # 7 pt per line, in figure fractions
    fig.get_layout_engine().set(rect=(0, reserved, 1, 1 - reserved))
    fig.text(0.005, 0.005, "\n".join(lines), fontsize=5, color="0.4", ha="left", va="bottom")
    fig.savefig(path, dpi=120, metadata={PNG_KEY: json.dumps(prov)})
    return path
