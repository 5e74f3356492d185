"""Benchmarks that compute a figure from the model are checked against a case worked by hand."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from worldsim.config import preset
from worldsim.evaluation.metrics import summarize
from worldsim.evaluation.tasks import border_mask
from worldsim.maze.core import OBJECT_COLOURS, MazeWorld
from worldsim.maze.policies import ExplorePolicy
from worldsim.evaluation.provenance import provenance
from worldsim.model import LSSVWM


def load_benchmark(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as importing does: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_memory_horizon_is_frames_until_the_state_falls_to_one_over_e():
    horizon = load_benchmark("ssm_memory_horizon")
    torch.manual_seed(0)
    model = LSSVWM(preset("tiny")).eval()  # blocks (4, 4) and (2, 2) on a 4x4 token grid
    dt, A = 0.01, 2.0
    with torch.no_grad():
        for layer in model.layers:
            ssm = layer.ssm
            ssm.in_proj.weight[-ssm.nheads:].zero_()  # dt no longer depends on the input
            ssm.dt_bias.fill_(float(torch.log(torch.expm1(torch.tensor(dt)))))  # softplus^-1(dt)
            ssm.A_log.fill_(float(torch.log(torch.tensor(A))))
    frames = torch.rand(2, 6, 3, 16, 16) * 2 - 1
    actions = torch.randint(0, 6, (2, 6))
    layers = horizon.head_horizons(model, frames, actions)
    assert [l["block"] for l in layers] == [[4, 4], [2, 2]]
    for l in layers:  # per frame the state keeps exp(-steps * dt * A)
        expected = 1.0 / (l["scan_steps_per_frame"] * dt * A)
        torch.testing.assert_close(torch.tensor(l["tau_frames"]), torch.full((ssm.nheads,), expected), rtol=1e-4, atol=0)


def compare_result(path: Path, rows: dict[str, list[list[float]]], episodes=(7, 8), window: int = 1,
                   seed: int | None = None) -> Path:
    """A compare_retrieval.json as `worldsim eval --task compare` writes it, with the given
    per-frame PSNRs (one list per episode) for each architecture, trained with `seed`."""
    table = [{"architecture": arch, "parameters": 1e6, "train_flops_per_frame": 1e9, "ssim": 0.5, "lpips": None,
              "psnr": float(np.mean([v for e in frames for v in e])), "final_loss": 0.1,
              "metrics": summarize({"psnr": [np.asarray(e) for e in frames], "ssim": [np.full(len(e), 0.5) for e in frames]})}
             for arch, frames in rows.items()]
    prov = provenance(None, "cpu", config={"sliding_window": window, **({} if seed is None else {"train": {"seed": seed}})})
    prov["checkpoints"] = {arch: {"path": f"runs/{arch}", "sha256": "0" * 64} for arch in rows}
    path.write_text(json.dumps({"task": "retrieval", "context": 4, "generate": None, "episodes": list(episodes),
                                "provenance": prov, "table": table}))
    return path


def test_compare_table_merges_rows_of_runs_that_scored_the_same_episodes(tmp_path):
    table = load_benchmark("compare_table")
    a = compare_result(tmp_path / "a.json", {"lssvwm": [[20.0, 14.0], [18.0, 12.0]]})
    b = compare_result(tmp_path / "b.json", {"lssvwm": [[19.0, 13.0], [18.0, 11.0]], "full_attention": [[16.0, 16.0], [15.0, 15.0]]})
    log = tmp_path / "full.jsonl"
    log.write_text("".join(json.dumps({"diffusion": v}) + "\n" for v in (5, 1, 2, 3, 4, 5)))
    specs = [table.parse_spec(s) for s in (f"{a}:lssvwm=ours, new", f"{b}:lssvwm=ours, old", f"{b}:full_attention")]
    rows, shared = table.merged_rows(specs, {"full_attention": log})
    assert [r["label"] for r in rows] == ["ours, new", "ours, old", "full_attention"]
    assert shared["sliding_window"] == 1 and "lssvwm_minus" not in rows[0]
    assert rows[1]["lssvwm_minus"]["mean"] == pytest.approx(((17 - 16) + (15 - 14.5)) / 2)
    assert rows[2]["lssvwm_minus"]["mean"] == pytest.approx(((17 - 16) + (15 - 15)) / 2)
    assert rows[2]["lssvwm_minus"]["wins"] == 1
    assert rows[0]["psnr_beyond_window"] == pytest.approx(13.0)  # frames past the 1-frame window
    assert rows[2]["final_loss"] == pytest.approx(3.0) and rows[0]["final_loss"] == 0.1
    markdown = table.table_markdown(rows, shared["task"], shared["sliding_window"])
    assert "| ours, old |" in markdown and "| full_attention |" in markdown
    figure = table.plot(rows, shared["task"], tmp_path / "merged.png")
    assert figure.stat().st_size > 0


def test_compare_table_pairs_each_seed_with_its_own_lssvwm_and_sums_up_over_seeds(tmp_path):
    table = load_benchmark("compare_table")
    s0 = compare_result(tmp_path / "s0.json", {"lssvwm": [[20.0], [18.0]], "mamba2": [[22.0], [20.0]]}, seed=0)
    s1 = compare_result(tmp_path / "s1.json", {"lssvwm": [[16.0], [14.0]], "mamba2": [[15.0], [14.0]]}, seed=1)
    rows, _ = table.merged_rows([table.parse_spec(s) for s in (f"{s0}:lssvwm", f"{s0}:mamba2", f"{s1}:lssvwm",
                                                               f"{s1}:mamba2")], {})
    assert [r["seed"] for r in rows] == [0, 0, 1, 1] and "lssvwm_minus" not in rows[2]
    assert rows[1]["lssvwm_minus"]["mean"] == pytest.approx(-2.0)  # against seed 0's lssvwm
    assert rows[3]["lssvwm_minus"]["mean"] == pytest.approx(0.5)   # against seed 1's, not seed 0's
    summary = table.seed_summary(rows)
    assert "| lssvwm | 19.00 / 15.00 | 17.00 | - | - |" in summary
    assert "| mamba2 | 21.00 / 14.50 | 17.75 | -2.00 / +0.50 | -0.75 |" in summary
    assert table.seed_summary(rows[:2]) is None  # one seed: nothing to sum up
    with pytest.raises(ValueError, match="no lssvwm row of their seed"):
        table.merged_rows([table.parse_spec(f"{s0}:lssvwm"), table.parse_spec(f"{s1}:mamba2")], {})
    rows, _ = table.merged_rows([table.parse_spec(s) for s in (f"{s0}:lssvwm", f"{s0}:lssvwm=again", f"{s1}:lssvwm")], {})
    with pytest.raises(ValueError, match="one row per model and seed"):
        table.seed_summary(rows)


def test_compare_table_refuses_rows_it_cannot_pair(tmp_path):
    table = load_benchmark("compare_table")
    a = compare_result(tmp_path / "a.json", {"lssvwm": [[20.0], [18.0]], "mamba2": [[19.0], [17.0]]})
    other = compare_result(tmp_path / "c.json", {"mamba2": [[1.0], [2.0]]}, episodes=(7, 9))
    with pytest.raises(ValueError, match="episodes"):
        table.merged_rows([table.parse_spec(f"{a}:lssvwm"), table.parse_spec(f"{other}:mamba2")], {})
    with pytest.raises(ValueError, match="must be an lssvwm row"):
        table.merged_rows([table.parse_spec(f"{a}:mamba2"), table.parse_spec(f"{a}:lssvwm")], {})
    with pytest.raises(ValueError, match="no 'full_attention' row"):
        table.merged_rows([table.parse_spec(f"{a}:full_attention")], {})
    with pytest.raises(ValueError, match="labels that are no row"):
        table.merged_rows([table.parse_spec(f"{a}:lssvwm")], {"typo": tmp_path / "x.jsonl"})
    with pytest.raises(ValueError, match="no training log"):
        table.merged_rows([table.parse_spec(f"{a}:lssvwm")], {"lssvwm": tmp_path / "x.jsonl"})
    (tmp_path / "other.json").write_text(json.dumps({"task": "retrieval"}))
    with pytest.raises(ValueError, match="not a compare result"):
        table.merged_rows([table.parse_spec(f"{tmp_path / 'other.json'}:lssvwm")], {})
    with pytest.raises(ValueError, match="PATH:ARCHITECTURE"):
        table.parse_spec("no-colon")


def test_recall_answers_lists_the_balls_in_view_and_counts_answers_against_them():
    answers = load_benchmark("recall_answers")
    episode, seen = answers.balls_in_view(0, 20, maze_size=5, image_size=32)
    assert len(seen) == len(episode.frames)
    cue_pixels = episode.cue_mask.flatten(1).sum(1)
    assert [episode.cue_object in s for s in seen] == (cue_pixels >= answers.MIN_PIXELS).tolist()
    # two episodes worked by hand: cue 0, last seen 1 (twice as often as 0); cue 2, last seen 2
    Episode = type("Episode", (), {})
    episodes = []
    for seed, cue in ((7, 0), (8, 2)):
        e = Episode()
        e.seed, e.cue_object, e.context_length, e.maze_size = seed, cue, 4, 9
        e.frames = torch.zeros(5, 32, 32, 3, dtype=torch.uint8)
        # the border shows ball 0, the first episode's cue
        e.frames[3, border_mask(32, 32)] = torch.tensor(OBJECT_COLOURS[0], dtype=torch.uint8)
        episodes.append(e)
    balls = answers.context_balls(episodes, [[{0}, {1}, {1}, set(), {0}], [{2}, set(), {0, 2}, {2}]])
    # frame 4 is past the context
    assert [(b["last_seen"], b["most_seen"], b["border"]) for b in balls] == [(1, 1, 0), (2, 2, 0)]
    recall = {"per_episode": [{"seed": 7, "predicted": 1, "cue_object": 0, "frames_scored": 3},
                              {"seed": 8, "predicted": None, "cue_object": 2, "frames_scored": 2}]}
    compared, evaluated = {"table": [{"architecture": "mamba2", "recall": recall}]}, {"recall": recall}
    assert answers.recall_of(compared, "mamba2") is recall and answers.recall_of(evaluated, None) is recall
    assert answers.parse_row("r.json=seed 0") == (Path("r.json"), None, "seed 0")  # a one-model evaluation
    assert answers.parse_row("r.json:mamba2") == (Path("r.json"), "mamba2", "mamba2")
    counts = answers.answers(recall, "mamba2", balls)
    assert (counts["ball_drawn"], counts["cue"], counts["last_seen"], counts["most_seen"]) == (1, 0, 1, 1)
    assert counts["last_seen_not_cue"] == {"episodes": 1, "ball_drawn": 1, "cue": 0, "last_seen": 1}
    assert counts["border"] == 0 and counts["border_not_cue"] == {"episodes": 1, "cue": 0}
    assert (counts["shuffled_chance"], counts["p_value"]) == (0.0, 1.0)  # its one memory episode: no ball drawn
    with pytest.raises(ValueError, match="not the rebuilt ones"):
        answers.answers(recall, "mamba2", balls[::-1])


@pytest.mark.parametrize("frames,max_gap,gaps", [(32, 14, "uniform"), (128, 100, "uniform"), (128, 100, "log")])
def test_memory_probe_videos_show_the_cue_where_recalled_and_its_score_reads_colours(frames, max_gap, gaps):
    probe = load_benchmark("memory_probe")
    videos = probe.episodes(64, seed=3, frames=frames, max_gap=max_gap, gaps=gaps)
    gaps = []
    for video, actions, cue in videos:
        assert video.shape == (frames, probe.SIZE, probe.SIZE, 3)
        shows = [0] + [i for i in range(1, frames) if actions[i - 1] == probe.RECALL]
        gaps += [b - a for a, b in zip(shows, shows[1:])]
        for i, frame in enumerate(video):
            assert (frame == (probe.COLOURS[cue] if i in shows else probe.GREY)).all()
    assert 1 <= min(gaps) and max(gaps) <= max_gap and max(gaps) > max_gap // 2
    assert sorted({cue for *_, cue in videos}) == [0, 1, 2, 3]
    truth = probe.accuracy_by_gap(videos, [video[1:] for video, _, _ in videos], max_gap)
    assert list(truth) == ["1-2", "3-6", "7-14"] + (["15-30", "31-62", "63-100"] if max_gap > 14 else [])
    assert all(r["accuracy"] == 1.0 and r["recalls"] > 0 for r in truth.values())
    wrong = [np.broadcast_to(probe.COLOURS[(cue + 1) % 4], video[1:].shape) for video, _, cue in videos]
    assert all(r["accuracy"] == 0.0 for r in probe.accuracy_by_gap(videos, wrong, max_gap).values())


def test_memory_gain_pairs_frames_and_refuses_runs_that_differ():
    gain = load_benchmark("memory_gain")

    def run(psnr, kept=None, **changes):
        per_frame = {"psnr": [np.asarray(p, float) for p in psnr], "ssim": [np.zeros(len(p)) for p in psnr]}
        return {"task": "retrieval", "context": 400, "generate": None, "teacher_forced": True, "context_kept": kept,
                "episodes": [{"seed": i} for i in range(len(psnr))], **changes,
                "metrics": summarize(per_frame)}

    # two episodes of different lengths: the whole context helps by 1 dB on the 1st, 3 dB on the 2nd's frame 11
    whole_psnr, kept_psnr = [[20.0] * 12, [10.0] * 10 + [13.0]], [[19.0] * 12, [10.0] * 11]
    whole, kept = run(whole_psnr), run(kept_psnr, kept=10)
    text = gain.table(whole, kept)
    row = next(line for line in text.splitlines() if line.startswith("| psnr"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:] == ["+0.636 +- 0.364", "2 of 2", "+0.500 +- 0.500", "+2.000 +- 1.000"]
    gain.check_pair(whole, kept)
    with pytest.raises(ValueError, match="teacher-forced"):
        gain.check_pair(whole, run([[1.0]], kept=10, teacher_forced=False))
    free = [run(p, kept=k, teacher_forced=False) for p, k in ((whole_psnr, None), (kept_psnr, 10))]
    gain.check_pair(*free, free_running=True)
    assert "free-running" in gain.table(*free)
    with pytest.raises(ValueError, match="free-running"):
        gain.check_pair(whole, kept, free_running=True)
    with pytest.raises(ValueError, match="first"):
        gain.check_pair(kept, whole)
    with pytest.raises(ValueError, match=r"\['context'\]"):
        gain.check_pair(whole, run([[1.0], [1.0]], kept=10, context=50))


def test_paired_eval_pairs_episodes_and_refuses_results_of_other_episodes(tmp_path, capsys):
    paired_eval = load_benchmark("paired_eval")

    def result(psnr, lpips=None, seeds=(0, 1, 2)):
        per_episode = {"psnr": psnr, "ssim": [0.5] * len(psnr), **({"lpips": lpips} if lpips else {})}
        mean = {k: sum(v) / len(v) for k, v in per_episode.items()}
        return {"task": "next-frame", "context": 100, "generate": 50, "teacher_forced": False,
                "episodes": [{"seed": s, "context_length": 100, "generated": 50} for s in seeds],
                "metrics": {"mean": mean, "per_episode": per_episode}}

    ref, other = result([20.0, 21.0, 22.0], [0.3, 0.3, 0.3]), result([21.0, 21.5, 21.0], [0.2, 0.4, 0.1])
    mean, se, better, n = paired_eval.paired(ref, other, "psnr")
    assert (round(mean, 6), round(se, 6), better, n) == (0.166667, 0.600925, 2, 3)
    assert paired_eval.paired(ref, other, "lpips")[2] == 2  # lower LPIPS is better
    assert paired_eval.paired(ref, result([1.0, 1.0, 1.0]), "lpips") is None
    paths = []
    for name, d in (("ref", ref), ("other", other), ("elsewhere", result([1.0, 2.0, 3.0], seeds=(0, 1, 5)))):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(d))
    sys.argv = ["paired_eval", str(paths[0]), str(paths[1]), "--names", "a,b"]
    assert paired_eval.main() == 0
    assert "| b | 21.17 | +0.167 +- 0.601 (2 of 3) |" in capsys.readouterr().out
    sys.argv = ["paired_eval", str(paths[0]), str(paths[2])]
    with pytest.raises(SystemExit, match="same task, lengths and episodes"):
        paired_eval.main()


def test_memory_gain_finds_the_places_the_world_reports():
    gain = load_benchmark("memory_gain")
    # an episode's poses (x, y, heading in radians) give the places the world itself reports
    world = MazeWorld(1, 9, 16, seed=3)
    world.reset(seeds=[3])
    policy = ExplorePolicy(world)
    poses, truth = [], []
    for _ in range(200):
        poses.append([*world.position[0].tolist(), float(world.heading_radians()[0])])
        truth.append(int(world.place()[0]))
        world.step(policy.act())
    assert gain.places(np.array(poses), 9).tolist() == truth and len(set(truth)) > 10


def test_context_use_conditions_are_the_paths_they_name():
    """Without the SSM's output, "SSM only" is the frame alone; without the attention's, it is the full model."""
    context_use = load_benchmark("context_use")
    frames = torch.randint(0, 256, (3, 6, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    actions = torch.randint(0, 4, (3, 6), generator=torch.Generator().manual_seed(1))

    def losses(cut: str | None):
        torch.manual_seed(0)
        model = LSSVWM(preset("tiny")).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.2 * torch.randn_like(p))
            for layer in model.layers:
                if cut == "ssm":
                    torch.nn.init.zeros_(layer.ssm.out_proj.weight)
                if cut == "attention":
                    torch.nn.init.zeros_(layer.attn.proj.weight)
                    torch.nn.init.zeros_(layer.attn.proj.bias)
        return context_use.last_frame_losses(model, frames, actions, 0.5, seed=1)

    for cut in (None, "ssm", "attention"):
        m = losses(cut)
        assert m["full"] != pytest.approx(m["no_past"], rel=1e-3)  # the past matters to each of these models
        if cut == "ssm":
            assert m["ssm_only"] == pytest.approx(m["no_past"], rel=1e-5)
        if cut == "attention":
            assert m["ssm_only"] == pytest.approx(m["full"], rel=1e-5)


def test_profile_batch_step_sorts_kernels_into_kinds():
    kind_of = load_benchmark("profile_batch_step").kind_of
    cases = {
        "_chunk_scan_fwd_kernel": "SSD scan (Triton)",
        "_state_passing_fwd_kernel": "SSD scan (Triton)",
        "sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32_warpgroupsize1x1x1": "matmul",
        "fmha_cutlassF_f32_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel)": "attention",
        "void at::native::(anonymous namespace)::CatArrayBatchedCopy<float, unsigned int, 5, 64, 64>": "copy / cat / index",
        "void at::native::vectorized_layer_norm_kernel<float, float>": "norm",
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>": "elementwise / reduce / other",
    }
    assert {name: kind_of(name) for name in cases} == cases


def test_sampler_schedule_pairs_each_power_with_the_first_and_reads_task_specs():
    import argparse

    schedule = load_benchmark("sampler_schedule")
    base = [20.0, 21.0, 22.0]
    assert schedule.paired(base, base) == "-"  # the first power's own row
    # differences +1, -0.5, +2: mean 0.833, sample std 1.258, standard error 0.726, 2 of 3 ahead
    assert schedule.paired([21.0, 20.5, 24.0], base) == "+0.833 +- 0.726 (2 of 3 ahead)"
    assert schedule.paired([19.0, 21.0, 21.5], base, lower_is_better=True).endswith("(2 of 3 ahead)")
    assert schedule.parse_task("next-frame:100:50") == ("next-frame", 100, 50)
    assert schedule.parse_task("retrieval") == ("retrieval", None, None)
    for bad in ("retrieve:50", "recall:1:2:3"):
        with pytest.raises(argparse.ArgumentTypeError, match="TASK"):
            schedule.parse_task(bad)


def test_history_guidance_at_scale_one_is_the_simulator_and_nothing_to_guide_by_changes_nothing(tiny_checkpoint,
                                                                                                monkeypatch):
    from worldsim.checkpoint import load_model
    from worldsim.diffusion import SamplerSettings
    from worldsim.evaluation.tasks import maze_episodes, maze_size, rollout
    from worldsim.simulator import Simulator

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # its sibling import
    guidance = load_benchmark("history_guidance")
    model, config = load_model(tiny_checkpoint)
    model.eval()
    sampler = SamplerSettings.from_config(config)
    episodes = maze_episodes("retrieval", 2, 6, None, maze_size(config), model.cfg.image_size)
    for teacher_forced in (False, True):  # the generated frames committed at the context noise, or the true ones
        plain = rollout(Simulator.for_checkpoint(model, config, device="cpu"), episodes, 4, teacher_forced)
        guided = guidance.guided_rollout(model, episodes, 4, sampler, guidance.Guidance(1.0, 1.0), teacher_forced, 2)
        for p, g in zip(plain.generated, guided.generated):
            assert p.shape == g.shape == (4, 16, 16, 3)
            assert np.abs(p.astype(int) - g.astype(int)).max() <= 1  # float rounding of another pass layout
    # a weak memory that is the full one leaves nothing to extrapolate: any scale draws the same frame
    g = torch.Generator().manual_seed(0)
    memory = model(torch.rand(2, 3, 3, 16, 16, generator=g) * 2 - 1, torch.zeros(2, 3),
                   torch.randint(0, 6, (2, 3), generator=g), update_cache=True).cache
    z, action = torch.randn(2, 1, 3, 16, 16, generator=g), torch.tensor([[1], [4]])
    with torch.no_grad():
        frames = [guidance.guided_frame(model, memory, memory, action, z, sampler, guidance.Guidance(s, 1.0))
                  for s in (1.0, 3.0)]
        weak = model(torch.randn(2, 3, 3, 16, 16, generator=g), torch.ones(2, 3),
                     torch.randint(0, 6, (2, 3), generator=g), update_cache=True).cache
        guided = guidance.guided_frame(model, memory, weak, action, z, sampler, guidance.Guidance(3.0, 1.0))
    assert torch.equal(frames[0], frames[1])
    assert not torch.equal(guided, frames[0])  # and a weak memory that differs does move the frame


def test_bench_maze_ball_sightings_count_returns_as_a_loop_does():
    bench = load_benchmark("bench_maze")
    shown, largest_is_target, back = bench.ball_sightings(7, 2, 120, "cpu", (5, 20))
    assert 0 < shown < 1 and 0 <= largest_is_target <= 1
    # the same counts, frame by frame
    world = MazeWorld(2, 7, seed=0)
    world.reset(seeds=[0, 1])
    act = ExplorePolicy(world).act
    frames = []
    for _ in range(120):
        ids = world.render_object_ids()
        frames.append([[int((ids[b] == k).sum()) >= 4 for k in range(world.n_objects)] for b in range(2)])
        frames[-1].append(world.target.tolist())
        world.move(act())
    for gap, (count, share) in back.items():
        hits = [f[-1][b] == k for b in range(2) for k in range(world.n_objects) for t, f in enumerate(frames)
                if t >= gap and f[b][k] and not any(g[b][k] for g in frames[t - gap:t])]
        assert count == len(hits) > 0 and share == pytest.approx(np.mean(hits))


def test_layer_use_finds_the_layer_that_is_an_identity():
    """A layer whose adaLN gates are shut (a grown layer before training) moves nothing and costs
    nothing to skip; the others do both."""
    layer_use = load_benchmark("layer_use")
    frames = torch.randint(0, 256, (2, 5, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    actions = torch.randint(0, 4, (2, 5), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = LSSVWM(preset("tiny")).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
        torch.nn.init.zeros_(model.layers[1].ada.weight)
        torch.nn.init.zeros_(model.layers[1].ada.bias)
    m = layer_use.layer_use(model, frames, actions, 0.5, seed=1)
    assert len(m["update"]) == len(m["skipped"]) == len(model.layers) >= 2
    assert m["update"][1] == 0 and m["skipped"][1] == pytest.approx(m["full"], rel=1e-6)
    assert m["update"][0] > 0.01 and m["skipped"][0] != pytest.approx(m["full"], rel=1e-3)
    assert not any(layer._forward_hooks for layer in model.layers)  # the model is left as it was


def test_next_frame_error_scores_each_estimate_group_and_place_as_worked_by_hand():
    nfe = load_benchmark("next_frame_error")
    truth = np.full((1, 2, 8, 8, 3), 100, dtype=np.uint8)  # one episode, 2 frames of 8x8, patches of 4
    border = nfe.patch_places(8, 4)["patch border"]
    assert border.sum() == 48 and border[0].all() and not border[1, 1] and border[3, 1] and border[4, 2]
    step = np.where(border[..., None], 10, 0).astype(np.uint8)  # draws off by +-10 on the patch borders only
    draws = np.stack([truth + step, truth - step])
    previous = truth.copy()
    previous[0, 1] += 5  # frame 1 moved: its predecessor is 5 grey levels off everywhere
    rows = {r["group"]: r for r in nfe.error_table(draws, truth, previous, np.array([[0, 1]]), 4)}
    assert set(rows) == {"all frames", "noop", "forward"} and rows["all frames"]["frames"] == 2
    psnr = lambda mse: 10 * np.log10(255.0 ** 2 / mse)  # noqa: E731
    for r in rows.values():
        assert r["one sample"] == pytest.approx(psnr(100 * 48 / 64))  # squared error 100 on 48 of 64 pixels
        assert r["mean of samples"] == 100.0  # the two draws average to the truth: the cap
        assert r["one sample, patch border"] == pytest.approx(psnr(100))
        assert r["one sample, patch interior"] == 100.0
    assert rows["noop"]["last true frame"] == 100.0 and rows["forward"]["last true frame"] == pytest.approx(psnr(25))
    assert rows["all frames"]["last true frame"] == pytest.approx(psnr(12.5))


def test_config_candidates_times_the_shipped_config_as_the_ratios_base(tmp_path, monkeypatch, one_thread):
    candidates = load_benchmark("config_candidates")
    out = tmp_path / "candidates.json"
    monkeypatch.setattr(sys, "argv", ["config_candidates.py", "--only", "k = 5", "--steps", "1", "--rounds", "1",
                                      "--context", "2", "--out", str(out)])
    candidates.main()
    rows = json.loads(out.read_text())["candidates"]
    assert list(rows) == [candidates.SHIPPED, "k = 5"]  # the shipped config is timed too: the ratios' base
    shipped = rows[candidates.SHIPPED]
    assert shipped["parameters"] == LSSVWM(preset("small")).num_parameters() and shipped["tokens_per_frame"] == 64
    assert shipped["time_vs_shipped"] == 1.0 and len(shipped["step_ms"]) == 1
    assert rows["k = 5"]["config"]["attn_window"] == 5
