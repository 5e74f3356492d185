"""`worldsim bench` runs end to end on CPU and its memory columns show what the architectures
promise: LSSVWM's cache is flat, full attention's grows with every frame. (Cache bytes, not
timings: timings on a shared CI machine are noise.)"""

import json

import pytest

from PIL import Image

from worldsim.bench import latency_ratios, latency_table, latency_vs_frames
from worldsim.cli import main
from worldsim.config import preset, variant
from worldsim.diffusion import SamplerSettings
from worldsim.evaluation.provenance import PNG_KEY
from worldsim.model import LSSVWM
from worldsim.simulator import Simulator


def test_bench_writes_tables_json_and_plots(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "--checkpoint", str(tiny_checkpoint), "--frames", "24", "--sampling-steps", "1",
                 "--batch-sizes", "1,3", "--batch-steps", "1", "--batch-rounds", "1", "--cuda-graph", "--train-batch", "1", "--train-window", "4",
                 "--train-steps", "1", "--quality-steps", "1,2", "--quality-episodes", "1", "--quality-context", "4",
                 "--sliding-window", "8", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| frame |" in printed and "frames/s" in printed and "MFU" in printed and "| steps |" in printed
    report = json.loads((out / "bench.json").read_text())
    assert set(report["sections"]) == {"latency", "batch", "train", "quality"}

    runs = report["latency"]["runs"]
    assert runs["lssvwm"]["frame"] == [10, 20, 24]
    assert len(set(runs["lssvwm"]["cache_bytes"])) == 1  # fixed-size memory
    full = runs["full_attention"]["cache_bytes"]
    assert all(a < b for a, b in zip(full, full[1:])) and full[-1] / full[0] > 2  # grows with the frames
    assert runs["sliding_attention"]["cache_bytes"][-1] == runs["sliding_attention"]["cache_bytes"][0]  # its ring
    assert all(b > 0 for r in runs.values() for b in r["rss_bytes"]) and len(runs["lssvwm"]["step_ms"]) == 24
    ratios = report["latency"]["ratios"]
    assert ratios["lssvwm"]["late_over_early_cache"] == 1.0
    assert ratios["full_attention"]["late_over_early_cache"] > 2
    assert ratios["lssvwm_over_full_attention"]["cache"] < 1

    assert [r["batch"] for r in report["batch"]] == [1, 3]
    modes = ["plain", "static step (no graph on a CPU)"]
    assert all(list(r["modes"]) == modes and all(m["frames_per_s"] > 0 for m in r["modes"].values())
               for r in report["batch"])
    assert f"{modes[1]} / plain frames/s" in printed
    train = report["train"]
    assert train["frames_per_s"] > 0 and train["tokens_per_s"] == pytest.approx(train["frames_per_s"] * 16, rel=1e-5)  # stored at 6 digits
    assert train["mfu"] is None and "CUDA" in train["mfu_note"]
    assert [r["sampling_steps"] for r in report["quality"]] == [1, 2]

    assert report["provenance"]["checkpoints"]["model"]["sha256"]
    for png in ("latency_vs_frames", "memory_vs_frames", "batched_throughput", "quality_vs_steps"):
        assert json.loads(Image.open(out / f"{png}.png").text[PNG_KEY])["date"] == report["provenance"]["date"]


def test_bench_refuses_quality_without_trained_weights(tmp_path, capsys):
    assert main(["bench", "--preset", "tiny", "--sections", "quality", "--out", str(tmp_path)]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_a_run_that_outgrows_its_memory_budget_stops_and_says_so():
    runs = {}
    for arch in ("lssvwm", "full_attention"):
        sim = Simulator(LSSVWM(variant(preset("tiny"), arch)), SamplerSettings(steps=1), device="cpu")
        runs[arch] = latency_vs_frames(sim, 30, arch, max_cache_bytes=150_000)
    assert runs["lssvwm"]["stopped"] is None and runs["lssvwm"]["frame"] == [10, 20, 30]
    assert runs["full_attention"]["frame"] == [10] and "cache above" in runs["full_attention"]["stopped"]
    table = latency_table(runs, cuda=False)
    assert table.splitlines()[-3].endswith("| - | - | - |") and "full_attention stopped" in table
    assert latency_ratios(runs)["lssvwm_over_full_attention"]["frame"] == 10
