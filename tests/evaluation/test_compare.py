"""The baseline comparison: parameter-matched variants, equal training, the paper-style table."""

import json
import re

import numpy as np
import pytest

from worldsim.cli import main
from worldsim.config import ARCHITECTURES, preset
from worldsim.evaluation.compare import (compare_tasks, count_parameters, final_loss, job_devices, paired_difference,
                                         parameter_matched, psnr_beyond)
from worldsim.evaluation.tasks import DEFAULT_LENGTHS


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_every_architecture_is_matched_to_lssvwm_parameters(name):
    cfg = preset(name)
    target = count_parameters(cfg)
    for arch in ARCHITECTURES:
        matched = parameter_matched(cfg, arch)
        assert matched.architecture == arch
        assert abs(count_parameters(matched) / target - 1) <= 0.1, (arch, matched.width, matched.depth)
    assert parameter_matched(cfg, "full_attention").attn_window is None
    assert parameter_matched(cfg, "sliding_attention", sliding_window=7).attn_window == 7


def test_compare_trains_five_models_and_writes_the_table(tmp_path, capsys):
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"model": "tiny", "maze_size": 5, "batch_size": 2, "window_schedule": [[0, 6]],
                                  "warmup_steps": 1, "total_steps": 2, "save_every": 1000, "episode_length": 32}))
    out = tmp_path / "compare"
    code = main(["eval", "--task", "compare", "--train-config", str(config), "--steps", "2", "--context", "6",
                 "--generate", "4", "--episodes", "2", "--sampling-steps", "1", "--weights", "model", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "compare_retrieval.json").read_text())
    rows = result["table"]
    assert [r["architecture"] for r in rows] == list(ARCHITECTURES)
    lssvwm = rows[0]["parameters"]
    assert all(abs(r["parameters"] / lssvwm - 1) <= 0.1 for r in rows)
    assert all(r["lpips"] is None and 0 < r["psnr"] < 100 and r["paper"]["psnr"] > 0 for r in rows)
    assert result["provenance"]["config"]["sliding_window"] == 3  # the paper's 192 per 400 context frames
    assert set(result["provenance"]["checkpoints"]) == set(ARCHITECTURES)
    table = (out / "compare_retrieval.md").read_text()
    assert len([line for line in table.splitlines() if line.startswith("| ") and "model" not in line]) == 5
    assert "| lssvwm |" in table and "30.8" in table and (out / "compare_retrieval_metrics.png").is_file()
    assert all(r["final_loss"] > 0 and r["psnr_beyond_window"] > 0 for r in rows)  # 4 frames, window 3
    assert "lssvwm_minus" not in rows[0] and all(r["lssvwm_minus"]["episodes"] == 2 for r in rows[1:])
    assert "PSNR beyond 3" in table and len(re.findall(r"\(\d/2\)", table)) == 4  # a paired cell per baseline
    assert "| full_attention |" in capsys.readouterr().out

    # run again: every model already has its checkpoint at step 2, so nothing is retrained
    before = {a: (out / a / "latest").read_text() for a in ARCHITECTURES}
    assert main(["eval", "--task", "compare", "--train-config", str(config), "--steps", "2", "--context", "6",
                 "--generate", "4", "--episodes", "1", "--sampling-steps", "1", "--architectures", "lssvwm",
                 "--out", str(out)]) == 0
    assert (out / "lssvwm" / "latest").read_text() == before["lssvwm"]


def test_compare_jobs_trains_side_by_side_like_one_at_a_time(tmp_path):
    """--jobs 2 runs each model in its own process; the table equals the one-process run's."""
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"model": "tiny", "maze_size": 5, "batch_size": 2, "window_schedule": [[0, 6]],
                                  "warmup_steps": 1, "total_steps": 2, "save_every": 1000, "episode_length": 32}))
    args = ["eval", "--task", "compare", "--train-config", str(config), "--steps", "2", "--context", "6",
            "--generate", "4", "--episodes", "1", "--sampling-steps", "1", "--weights", "model", "--device", "cpu",
            "--architectures", "lssvwm,mamba2", "--compare-on", "reasoning"]
    assert main(args + ["--out", str(tmp_path / "serial")]) == 0
    assert main(args + ["--out", str(tmp_path / "parallel"), "--jobs", "2"]) == 0
    rows = {name: json.loads((tmp_path / name / "compare_reasoning.json").read_text())["table"] for name in ("serial", "parallel")}
    assert [r["architecture"] for r in rows["parallel"]] == ["lssvwm", "mamba2"]
    for a, b in zip(rows["serial"], rows["parallel"]):
        assert a["parameters"] == b["parameters"]
        assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-3)


def test_compare_on_several_tasks_trains_once_and_scores_cue_recall(tmp_path, monkeypatch):
    from worldsim.evaluation import compare

    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"model": "tiny", "maze_size": 7, "batch_size": 2, "window_schedule": [[0, 6]],
                                  "warmup_steps": 1, "total_steps": 1, "save_every": 1000, "episode_length": 32}))
    trained = []
    real_train = compare.train
    monkeypatch.setattr(compare, "train", lambda cfg, run_dir, *a: trained.append(run_dir.name) or real_train(cfg, run_dir, *a))
    out = tmp_path / "compare"
    assert main(["eval", "--task", "compare", "--train-config", str(config), "--steps", "1", "--context", "10",
                 "--episodes", "2", "--sampling-steps", "1", "--architectures", "lssvwm,sliding_attention",
                 "--compare-on", "recall,retrieval:8", "--out", str(out)]) == 0
    assert trained == ["lssvwm", "sliding_attention"]  # each model trained once for both tasks
    recall = json.loads((out / "compare_recall.json").read_text())
    retrieval = json.loads((out / "compare_retrieval.json").read_text())
    assert recall["task"] == "recall" and retrieval["task"] == "retrieval"
    assert recall["context"] == 10 and retrieval["context"] == 8  # --context, and retrieval's own
    assert [r["architecture"] for r in retrieval["table"]] == ["lssvwm", "sliding_attention"]
    assert retrieval["table"][1]["lssvwm_minus"]["episodes"] == 2 and "recall" not in retrieval["table"][0]
    rows = recall["table"]
    assert all(r["recall"]["episodes_scored"] + r["recall"]["border_shows_cue"] == 2
               and r["recall"]["reader_accuracy_on_truth"] == 1.0 for r in rows)
    assert all(r["paper"] is None for r in rows)  # the paper has no recall table
    table = (out / "compare_recall.md").read_text()
    assert "cue recall" in table and len(re.findall(r"\| \d\.\d\d \(0\.33; \d\.\d\d, p \d\.\d{3}\) \|", table)) == 2
    assert (out / "compare_retrieval_metrics.png").is_file() and (out / "compare_recall_metrics.png").is_file()
    # each model's row, written as soon as it was scored, is the merged table's row
    own = json.loads((out / "sliding_attention" / "compare_retrieval.json").read_text())
    assert own["episodes"] == retrieval["episodes"] and own["table"][0]["psnr"] == retrieval["table"][1]["psnr"]


def test_compare_context_kept_scores_each_task_again_on_the_last_frames(tmp_path, capsys, monkeypatch):
    """The memory control: every task scored a second time on the last K context frames, beside the whole."""
    from worldsim.evaluation import compare

    kept_by_call = []
    real_evaluate = compare.evaluate_task
    monkeypatch.setattr(compare, "evaluate_task", lambda *a, **kw: kept_by_call.append(kw.get("context_kept"))
                        or real_evaluate(*a, **kw))
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"model": "tiny", "maze_size": 7, "batch_size": 2, "window_schedule": [[0, 6]],
                                  "warmup_steps": 1, "total_steps": 1, "save_every": 1000, "episode_length": 32}))
    args = ["eval", "--task", "compare", "--train-config", str(config), "--steps", "1", "--episodes", "2",
            "--sampling-steps", "1", "--weights", "model", "--architectures", "lssvwm,mamba2",
            "--compare-on", "recall:10,retrieval:8", "--generate", "4", "--out", str(tmp_path / "cmp")]
    assert main(args + ["--context-kept", "3"]) == 0
    assert kept_by_call == [None, 3] * 4  # two models, two tasks: the whole context, then its last 3 frames
    for task in ("recall", "retrieval"):
        result = json.loads((tmp_path / "cmp" / f"compare_{task}.json").read_text())
        assert result["provenance"]["config"]["context_kept"] == 3
        for row in result["table"]:
            kept = row["kept"]
            assert kept["frames"] == 3 and 0 < kept["psnr"] < 100
            # the pairing is whole minus kept, episode by episode
            whole, cut = row["metrics"]["per_episode"]["psnr"], kept["metrics"]["per_episode"]["psnr"]
            assert kept["whole_minus_kept"]["mean"] == pytest.approx(np.mean(np.subtract(whole, cut)))
            assert ("recall" in kept) == (task == "recall")
        table = (tmp_path / "cmp" / f"compare_{task}.md").read_text()
        assert "PSNR, last 3 | whole - last 3, PSNR |" in table and "Last 3:" in table
        assert ("cue recall, last 3" in table) == (task == "recall")
        header, rule, *rows = [line for line in table.splitlines() if line.startswith("|")]
        assert all(line.count("|") == header.count("|") for line in (rule, *rows))

    capsys.readouterr()
    assert main(args + ["--context-kept", "8"]) == 2  # retrieval's context is 8: nothing would be cut
    assert "--context-kept 8 keeps every frame of a 8-frame context" in capsys.readouterr().err


@pytest.mark.parametrize("task, options, named", [
    ("compare", ["--teacher-forced"], "--teacher-forced"),
    ("compare", ["--checkpoint", "maze", "--data", "shards"], "--checkpoint, --data"),
    ("retrieval", ["--steps", "5"], "--steps"),
    ("recall", ["--jobs", "2", "--compare-on", "recall"], "--compare-on, --jobs"),
])
def test_eval_refuses_options_of_the_other_mode(capsys, task, options, named):
    """compare's options on one checkpoint's evaluation, or the reverse, would be ignored: an error names them."""
    assert main(["eval", "--task", task, *options]) == 2
    assert f"{named}: not for --task {task}" in capsys.readouterr().err


def test_compare_seed_retrains_on_other_weights_and_scores_the_same_episodes(tmp_path, capsys):
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"model": "tiny", "maze_size": 5, "batch_size": 2, "window_schedule": [[0, 6]],
                                  "warmup_steps": 1, "total_steps": 1, "save_every": 1000, "episode_length": 32}))
    args = ["eval", "--task", "compare", "--train-config", str(config), "--steps", "1", "--context", "6",
            "--generate", "4", "--episodes", "2", "--sampling-steps", "1", "--weights", "model",
            "--architectures", "lssvwm"]
    results = {}
    for seed in ("0", "1"):
        assert main(args + ["--seed", seed, "--out", str(tmp_path / seed)]) == 0
        results[seed] = json.loads((tmp_path / seed / "compare_retrieval.json").read_text())
    assert [results[s]["provenance"]["config"]["train"]["seed"] for s in "01"] == [0, 1]
    assert results["0"]["episodes"] == results["1"]["episodes"]
    assert results["0"]["table"][0]["psnr"] != results["1"]["table"][0]["psnr"]  # other initial weights
    # seed 0's trained run is not taken for seed 1's
    assert main(args + ["--seed", "1", "--out", str(tmp_path / "0")]) == 2
    assert "another config (differing: seed)" in capsys.readouterr().err


def test_a_task_may_carry_its_own_context():
    assert compare_tasks("retrieval:192,reasoning,recall", None, None) == [
        ("retrieval", 192, DEFAULT_LENGTHS["retrieval"][1]), ("reasoning", *DEFAULT_LENGTHS["reasoning"]),
        ("recall", *DEFAULT_LENGTHS["recall"])]
    assert compare_tasks("reasoning,retrieval:64", 30, 5) == [("reasoning", 30, 5), ("retrieval", 64, 5)]


@pytest.mark.parametrize("names", ["retrieval,next-frame", "recall,recall", ",", "retrieval:0", "retrieval:x",
                                   "recall:5,recall:6"])
def test_compare_refuses_tasks_it_cannot_compare_on(tmp_path, capsys, names):
    assert main(["eval", "--task", "compare", "--steps", "1", "--compare-on", names, "--out", str(tmp_path)]) == 2
    assert "--compare-on" in capsys.readouterr().err


def test_memory_columns_of_the_table(tmp_path):
    per_frame = [[20.0, 18.0, 12.0, 10.0], [22.0, 14.0]]  # episodes of unequal length
    assert psnr_beyond(per_frame, 1) == pytest.approx((18 + 12 + 10 + 14) / 4)
    assert psnr_beyond(per_frame, 4) is None  # no frame past the window
    d = paired_difference([13.0, 12.0, 15.0], [12.0, 12.5, 13.0])
    assert d["mean"] == pytest.approx(2.5 / 3) and d["wins"] == 2 and d["episodes"] == 3
    assert d["se"] == pytest.approx(np.std([1.0, -0.5, 2.0], ddof=1) / 3 ** 0.5)
    assert paired_difference([1.0], [0.0])["se"] is None
    assert final_loss(tmp_path / "metrics.jsonl") is None
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"diffusion": v}) + "\n" for v in (9, 9, 1, 2, 3, 4, 5)))
    assert final_loss(tmp_path / "metrics.jsonl") == pytest.approx(3.0)


def test_jobs_are_dealt_round_robin_over_several_gpus_only():
    assert job_devices("cuda", 5, jobs=5, cuda_count=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert job_devices("auto", 3, jobs=2, cuda_count=4) == ["cuda:0", "cuda:1", "cuda:2"]
    assert job_devices("cuda", 3, jobs=1, cuda_count=4) == ["cuda"] * 3  # one at a time: the default GPU
    assert job_devices("cuda", 2, jobs=2, cuda_count=1) == ["cuda"] * 2
    assert job_devices("cuda:1", 2, jobs=2, cuda_count=4) == ["cuda:1"] * 2  # an explicit GPU is kept
    assert job_devices("cpu", 2, jobs=2, cuda_count=4) == ["cpu"] * 2


def test_compare_stopped_by_a_signal_writes_no_table_and_resumes(tmp_path, monkeypatch, capsys):
    """SIGTERM mid-training: the checkpoint is saved, no part-trained model enters a table (exit 130),
    and the same command then finishes the training and writes the table."""
    from worldsim.train.trainer import Trainer

    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"model": "tiny", "maze_size": 5, "batch_size": 2, "window_schedule": [[0, 6]],
                                  "warmup_steps": 1, "total_steps": 3, "save_every": 1000, "episode_length": 32}))
    args = ["eval", "--task", "compare", "--train-config", str(config), "--steps", "3", "--context", "6",
            "--generate", "4", "--episodes", "1", "--sampling-steps", "1", "--device", "cpu",
            "--architectures", "lssvwm", "--out", str(tmp_path / "c")]
    real_step = Trainer.train_step

    def step_then_sigterm(self):
        out = real_step(self)
        self._request_stop(None, None)  # what the SIGTERM handler does
        return out

    monkeypatch.setattr(Trainer, "train_step", step_then_sigterm)
    assert main(args) == 130
    assert "training stopped before step 3 (lssvwm)" in capsys.readouterr().err
    assert not (tmp_path / "c" / "compare_retrieval.json").exists()
    assert (tmp_path / "c" / "lssvwm" / "latest").read_text().strip().endswith("1")

    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert main(args) == 0
    assert json.loads((tmp_path / "c" / "compare_retrieval.json").read_text())["steps"] == 3
    assert (tmp_path / "c" / "lssvwm" / "latest").read_text().strip().endswith("3")
