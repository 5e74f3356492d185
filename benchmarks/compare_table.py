"""One comparison table from rows of several `worldsim eval --task compare` runs.

    python benchmarks/compare_table.py RUN_A/compare_retrieval.json:lssvwm="LSSVWM (dt frame)" \\
        RUN_B/compare_retrieval.json:sliding_attention --metrics "LSSVWM (dt frame)"=RUN_A/lssvwm/metrics.jsonl \\
        [--out table.md] [--plot metrics.png]

Device time comes in pieces, so the models of one comparison are often trained and evaluated in
different runs. Their rows are comparable when the runs scored the same held-out episodes (seeds),
with the same context and generated lengths and the same sliding window: this script checks that
and refuses otherwise. The first row must be an LSSVWM row: the paired differences (over the same
episodes) are taken against it. Each SPEC is `PATH:ARCHITECTURE[=LABEL]`; `--metrics LABEL=PATH`
fills the final-loss column from a training log for rows whose run did not record it. `--plot`
draws the rows' metrics vs frame distance in one figure. A run cut off before its own table still
left each model's one-row result in OUT/ARCH (`worldsim eval --task compare` writes it as soon as
the model is scored): those merge here like any other.

Rows of several training seeds (`--seed`) may share a table: each row is paired against the LSSVWM
row of its own seed, and a second table sums up each model over the seeds -- its PSNR and its gap to
LSSVWM per seed and their mean. With two seeds, how far apart a model's seeds land is the spread
that the paired standard errors (over episodes, one trained model each) do not show.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from worldsim.evaluation.compare import final_loss, pair_with_lssvwm, psnr_beyond, table_markdown
from worldsim.evaluation.plots import metric_curves

SAME_ACROSS_RUNS = ("task", "context", "generate", "episodes")


def parse_spec(spec: str) -> tuple[Path, str, str]:
    head, _, label = spec.partition("=")
    path, sep, arch = head.rpartition(":")
    if not sep or not path or not arch:
        raise ValueError(f"row spec {spec!r}: expected PATH:ARCHITECTURE[=LABEL]")
    return Path(path), arch, label or arch


def merged_rows(specs: list[tuple[Path, str, str]], metrics: dict[str, Path]) -> tuple[list[dict], dict]:
    """The chosen rows, each labelled, with the memory columns and the paired difference to the
    first row recomputed; and the settings every run shares (task, lengths, episodes, window)."""
    rows, shared = [], None
    for path, arch, label in specs:
        result = json.loads(path.read_text())
        missing = [k for k in (*SAME_ACROSS_RUNS, "table", "provenance") if k not in result]
        if missing:
            raise ValueError(f"{path} is not a compare result (no {', '.join(missing)})")
        settings = {k: result[k] for k in SAME_ACROSS_RUNS}
        settings["sliding_window"] = result["provenance"]["config"]["sliding_window"]
        if shared is None:
            shared, first = settings, path
        for k, v in settings.items():
            if v != shared[k]:
                raise ValueError(f"{path}: {k} is {v!r}, but {first} has {shared[k]!r}: rows scored on "
                                 "different episodes or settings cannot share a table")
        found = [r for r in result["table"] if r["architecture"] == arch]
        if not found:
            raise ValueError(f"{path} has no {arch!r} row (it has {[r['architecture'] for r in result['table']]})")
        row = dict(found[0], label=label, provenance=result["provenance"],
                   seed=result["provenance"]["config"].get("train", {}).get("seed"))
        row["psnr_beyond_window"] = psnr_beyond(row["metrics"]["per_frame"]["psnr"], shared["sliding_window"])
        if label in metrics:
            if not metrics[label].is_file():
                raise ValueError(f"--metrics {label}: no training log at {metrics[label]}")
            row["final_loss"] = final_loss(metrics[label])
        row.setdefault("final_loss", None)
        rows.append(row)
    if rows[0]["architecture"] != "lssvwm":
        raise ValueError(f"the first row is the reference of the paired differences and must be an lssvwm row, "
                         f"not {rows[0]['architecture']!r}")
    unknown = set(metrics) - {r["label"] for r in rows}
    if unknown:
        raise ValueError(f"--metrics for labels that are no row: {sorted(unknown)}")
    unpaired = sorted({r["seed"] for r in rows} - {r["seed"] for r in rows if r["architecture"] == "lssvwm"}, key=str)
    if unpaired:
        raise ValueError(f"rows trained with seed {unpaired} have no lssvwm row of their seed to be paired against")
    pair_with_lssvwm(rows)
    return rows, shared


def seed_summary(rows: list[dict]) -> str | None:
    """Each model over the training seeds of `rows` (None when they share one seed): its PSNR and
    its paired gap to LSSVWM at each seed, and their means; named by the model's first row."""
    seeds = sorted({r["seed"] for r in rows}, key=lambda s: -1 if s is None else s)  # None: no training config recorded
    if len(seeds) < 2:
        return None
    by_model: dict[str, dict] = {}
    for r in rows:
        seen = by_model.setdefault(r["architecture"], {})
        if r["seed"] in seen:
            raise ValueError(f"two {r['architecture']} rows of seed {r['seed']} ({seen[r['seed']]['label']!r}, "
                             f"{r['label']!r}): a summary over seeds takes one row per model and seed")
        seen[r["seed"]] = r
    recall = "recall" in rows[0]
    names = " / ".join(map(str, seeds))
    lines = [f"Over training seeds {names} (\"-\": not run at that seed). LSSVWM - model: each seed's paired mean "
             "over the episodes against that seed's LSSVWM.", "",
             f"| model | PSNR, seed {names} | mean | LSSVWM - model, seed {names} | mean |"
             + (f" cue recall, seed {names} |" if recall else ""),
             "|---|---|---|---|---|" + ("---|" if recall else "")]

    def per_seed(values: dict, spec: str) -> str:
        """The seeds' values, then their mean ("-" unless every seed has one)."""
        cells = " / ".join("-" if values.get(s) is None else format(values[s], spec) for s in seeds)
        mean = format(np.mean(list(values.values())), spec) if len(values) == len(seeds) else "-"
        return f"{cells} | {mean}"

    for arch, seen in by_model.items():
        label = next(iter(seen.values()))["label"]  # the model's first row names it
        psnr = per_seed({s: r["psnr"] for s, r in seen.items()}, ".2f")
        gap = "- | -" if arch == "lssvwm" else per_seed({s: r["lssvwm_minus"]["mean"] for s, r in seen.items()}, "+.2f")
        cue = (" " + " / ".join("-" if s not in seen else f"{seen[s]['recall']['accuracy']:.2f}" for s in seeds)
               + " |") if recall else ""
        lines.append(f"| {label} | {psnr} | {gap} |{cue}")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], task: str, path: Path) -> Path:
    """Every row's metrics vs frame distance; the footer names the first row's run and every row's
    checkpoint (by label)."""
    prov = dict(rows[0]["provenance"], command=None, argv=list(sys.argv),
                checkpoints={r["label"]: r["provenance"]["checkpoints"][r["architecture"]] for r in rows})
    return metric_curves({r["label"]: r["metrics"] for r in rows}, path, prov, f"{task}: equal parameters and steps")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", nargs="+", metavar="PATH:ARCHITECTURE[=LABEL]")
    p.add_argument("--metrics", action="append", default=[], metavar="LABEL=PATH",
                   help="training log (metrics.jsonl) of a row, for its final-loss column")
    p.add_argument("--out", help="also write the table here (markdown)")
    p.add_argument("--plot", help="also draw the rows' metrics vs frame distance here (PNG)")
    args = p.parse_args()
    metrics = {}
    for item in args.metrics:
        label, sep, path = item.rpartition("=")
        if not sep or not label:
            raise SystemExit(f"--metrics {item!r}: expected LABEL=PATH")
        metrics[label] = Path(path)
    rows, shared = merged_rows([parse_spec(s) for s in args.rows], metrics)
    table = table_markdown(rows, shared["task"], shared["sliding_window"])
    summary = seed_summary(rows)
    if summary:
        table += "\n" + summary
    print(table)
    if args.out:
        logs = "".join(f"\nFinal loss from: {item}" for item in args.metrics)
        Path(args.out).write_text(table + "\nRows: " + ", ".join(args.rows) + logs + "\n")
    if args.plot:
        print(f"wrote {plot(rows, shared['task'], Path(args.plot))}")


if __name__ == "__main__":
    main()
