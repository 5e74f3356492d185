"""Turn a training run into a shippable inference checkpoint: the EMA weights (as "model"), in
float16 by default (half the bytes; computation still runs in the loader's dtype), sharded below
16 MiB, with the run's config.json, a summary of its training and its loss curve (metrics.jsonl) continued
from the checkpoint it started from.

    python scripts/export_checkpoint.py RUN_DIR OUT_DIR [--dtype float16|bfloat16|float32]
"""

import argparse
import json
import shutil
from pathlib import Path

import torch

from worldsim.checkpoint import load_config, load_tensors, resolve, save_tensors

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def prior_stages(init_from: str) -> list[dict]:
    """The training stages behind the checkpoint a run started from (`init_from`), oldest first;
    export before the init checkpoint is replaced, or the lineage is lost."""
    if not init_from:
        return []
    trained = load_config(resolve(init_from)).get("trained", {})
    return trained.get("stages") or [{"steps": trained.get("steps", 0)}]


def training_curve(run_dir: Path, init_from: str, prior: list[dict]) -> list[dict]:
    """The checkpoint's metrics.jsonl rows: the init checkpoint's (already tagged), then this run's, each
    tagged with its stage and its step counted from the first stage (`total_step`), so one plot covers
    every stage (benchmarks/plot_training.py)."""
    init_metrics = resolve(init_from) / "metrics.jsonl" if init_from else None
    rows = read_jsonl(init_metrics) if init_metrics and init_metrics.is_file() else []
    run_metrics = Path(run_dir) / "metrics.jsonl"
    if run_metrics.is_file():
        offset = sum(s["steps"] for s in prior)
        rows += [{"stage": len(prior) + 1, "total_step": offset + row["step"], **row}
                 for row in read_jsonl(run_metrics)]
    return rows


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def export(run_dir: Path, out_dir: Path, dtype: str = "float16") -> Path:
    src = resolve(run_dir)
    config = load_config(src)
    state = json.loads((src / "trainer_state.json").read_text())
    weights = {k: (v.to(DTYPES[dtype]) if v.is_floating_point() else v) for k, v in load_tensors(src, "ema").items()}
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_tensors(weights, tmp, "model")
    stage = {"steps": state["step"], "window_schedule": config["train"]["window_schedule"],
             "init_from": config["train"].get("init_from", "")}
    if config["train"].get("init_reinit"):
        stage["init_reinit"] = config["train"]["init_reinit"]
    prior = prior_stages(stage["init_from"])
    stages = prior + [stage]
    config["trained"] = {"steps": sum(s["steps"] for s in stages), "stages": stages,
                         "weights": f"EMA, stored as {dtype}", "world_size": state.get("world_size", 1)}
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    curve = training_curve(run_dir, stage["init_from"], prior)
    (tmp / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in curve))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--dtype", default="float16", choices=sorted(DTYPES))
    a = p.parse_args()
    print(export(a.run_dir, a.out_dir, a.dtype))
