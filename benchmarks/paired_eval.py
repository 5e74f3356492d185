"""Paired differences between evaluations of the same episodes by different checkpoints.

    python benchmarks/paired_eval.py REF.json OTHER.json [OTHER2.json ...] [--names ref,other,...]

Each file is a `worldsim eval` result (OUT/TASK.json). Every OTHER is compared with REF episode by
episode: mean of (OTHER - REF) per metric, its standard error over the episodes, and how many
episodes OTHER scores better on (higher PSNR / SSIM, lower LPIPS). The files must hold the same
task, context and episode seeds, or the pairing would be meaningless: they are refused otherwise.
"""

import argparse
import json
from pathlib import Path

from worldsim.evaluation.metrics import paired_difference

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}


def load(path: str) -> dict:
    d = json.loads(Path(path).read_text())
    if "metrics" not in d or "per_episode" not in d["metrics"]:
        raise SystemExit(f"{path}: not a `worldsim eval` result (no metrics.per_episode)")
    return d


def key(d: dict) -> tuple:
    """What must match for two results to be paired: the task, its lengths and the episodes."""
    # results written before --teacher-forced existed have no such key: they were free-running
    return (d["task"], d.get("context"), d.get("generate"), bool(d.get("teacher_forced")),
            tuple((e["seed"], e["context_length"], e["generated"]) for e in d["episodes"]))


def paired(ref: dict, other: dict, metric: str) -> tuple[float, float, int, int] | None:
    """(mean difference, its standard error, episodes where other is better, episodes), or None
    when either result lacks the metric."""
    a, b = ref["metrics"]["per_episode"].get(metric), other["metrics"]["per_episode"].get(metric)
    if not a or not b or None in a or None in b:
        return None
    d = paired_difference(b, a, lower_is_better=not HIGHER_IS_BETTER[metric])
    return d["mean"], float("nan") if d["se"] is None else d["se"], d["wins"], d["episodes"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="REF.json then one or more OTHER.json")
    p.add_argument("--names", help="comma-separated labels, one per file (default: the file paths)")
    args = p.parse_args()
    if len(args.results) < 2:
        p.error("give a reference and at least one other result")
    names = args.names.split(",") if args.names else args.results
    if len(names) != len(args.results):
        p.error(f"--names has {len(names)} labels for {len(args.results)} files")
    results = [load(r) for r in args.results]
    for path, d in zip(args.results[1:], results[1:]):
        if key(d) != key(results[0]):
            raise SystemExit(f"{path} does not score the same task, lengths and episodes as {args.results[0]}: "
                             "paired differences need the same episodes")
    ref = results[0]
    print(f"task {ref['task']}, context {ref.get('context')}, {len(ref['episodes'])} episodes; "
          f"paired against {names[0]} (mean +- s.e. over the episodes, episodes ahead)")
    metrics = [m for m in HIGHER_IS_BETTER if any(paired(ref, d, m) for d in results[1:])]
    print("| checkpoint | " + " | ".join(f"{m} | paired" for m in metrics) + " |")
    print("|---|" + "---:|---:|" * len(metrics))
    for name, d in zip(names, results):
        cells = []
        for m in metrics:
            cells.append(f"{d['metrics']['mean'][m]:.4g}" if d["metrics"]["mean"].get(m) is not None else "-")
            r = None if d is ref else paired(ref, d, m)
            cells.append("" if r is None else f"{r[0]:+.3f} +- {r[1]:.3f} ({r[2]} of {r[3]})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
