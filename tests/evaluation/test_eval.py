"""`worldsim eval` on a tiny checkpoint: every task writes JSON + PNGs with provenance, teacher
forcing feeds the true frames, and the cue reader reads the true frames right."""

import json

import numpy as np
import pytest
import torch
from gymnasium import spaces
from PIL import Image
from safetensors.torch import save_file

from worldsim.checkpoint import load_model
from worldsim.cli import main
from worldsim.data.shards import ShardWriter
from worldsim.diffusion import SamplerSettings
from worldsim.evaluation.lpips import LPIPS
from worldsim.evaluation.provenance import PNG_KEY, checkpoint_sha256
from worldsim.evaluation.tasks import (Clip, Rollouts, _generate, answers_shuffled, border_mask, final_run,
                                       read_cue_colour, recall_scores, rollout)
from worldsim.maze.core import OBJECT_COLOURS
from worldsim.simulator import Simulator

PROVENANCE = {"command", "argv", "config", "checkpoints", "device", "torch", "python", "worldsim", "git_commit", "date"}


def run_eval(tmp_path, checkpoint, task, *extra):
    out = tmp_path / task
    code = main(["eval", "--checkpoint", str(checkpoint), "--task", task, "--episodes", "2", "--sampling-steps", "1",
                 "--out", str(out), *extra])
    assert code == 0
    result = json.loads((out / f"{task}.json").read_text())
    for png in (f"{task}_metrics.png", f"{task}_strip.png"):
        meta = json.loads(Image.open(out / png).text[PNG_KEY])
        assert meta["checkpoints"] == result["provenance"]["checkpoints"]
    return result


@pytest.mark.parametrize("task", ["retrieval", "next-frame"])
def test_eval_writes_metrics_per_distance_with_provenance(tmp_path, tiny_checkpoint, task):
    r = run_eval(tmp_path, tiny_checkpoint, task, "--context", "6", "--generate", "4")
    m = r["metrics"]
    assert m["per_distance"]["distance"] == [1, 2, 3, 4] and len(m["per_frame"]["psnr"]) == 2
    assert 0 < m["mean"]["psnr"] < 100 and -1 <= m["mean"]["ssim"] <= 1
    assert m["mean"]["lpips"] is None and "worldsim fetch-lpips" in m["lpips_note"]  # no weights fetched here
    assert all(e["seed"] >= 2**31 for e in r["episodes"])  # held-out maze seeds
    prov = r["provenance"]
    assert PROVENANCE <= set(prov)
    assert prov["checkpoints"]["model"]["sha256"] == checkpoint_sha256(tiny_checkpoint)
    assert prov["command"].startswith("worldsim eval") and f"--task {task}" in prov["command"]
    assert prov["config"]["model"]["image_size"] == 16
    assert prov["config"]["sampling"] == {"steps": 1, "context_noise": 0.02, "commit_in_sampler": False,
                                          "schedule_power": 1.0}


def test_eval_says_why_frames_too_small_get_no_lpips(tmp_path, tiny_checkpoint, monkeypatch):
    weights = tmp_path / "lpips.safetensors"
    save_file(LPIPS().state_dict(), weights)
    monkeypatch.setenv("WORLDSIM_LPIPS_WEIGHTS", str(weights))
    m = run_eval(tmp_path, tiny_checkpoint, "retrieval", "--context", "6", "--generate", "2")["metrics"]
    assert m["mean"]["lpips"] is None and "at least 31 pixels a side, these are 16x16" in m["lpips_note"]


def test_eval_takes_the_sampler_commit_flag(tmp_path, tiny_checkpoint):
    r = run_eval(tmp_path, tiny_checkpoint, "retrieval", "--context", "6", "--generate", "2", "--commit-in-sampler")
    assert r["provenance"]["config"]["sampling"]["commit_in_sampler"] is True


def test_teacher_forced_flag_feeds_the_true_frames_in_any_task(tmp_path, tiny_checkpoint):
    free = run_eval(tmp_path / "free", tiny_checkpoint, "retrieval", "--context", "6", "--generate", "4")
    forced = run_eval(tmp_path / "forced", tiny_checkpoint, "retrieval", "--context", "6", "--generate", "4",
                      "--teacher-forced")
    assert (free["teacher_forced"], forced["teacher_forced"]) == (False, True)
    a, b = (np.array(r["metrics"]["per_frame"]["psnr"]) for r in (free, forced))
    assert np.allclose(a[:, 0], b[:, 0])  # the first frame follows the true context either way
    assert not np.allclose(a[:, 1:], b[:, 1:])  # later ones follow true frames only when forced


def test_recall_scores_cue_colour_against_chance(tmp_path, tiny_checkpoint_maze7):
    r = run_eval(tmp_path, tiny_checkpoint_maze7, "recall", "--context", "10")["recall"]
    assert r["episodes_scored"] + r["border_shows_cue"] == 2 and r["reader_accuracy_on_truth"] == 1.0
    assert all(e["border_colour"] in (0, 1, 2) for e in r["per_episode"])
    assert 0 <= r["accuracy"] <= 1 and r["chance"] == pytest.approx(1 / 3) and 0 < r["p_value"] <= 1
    assert all(e["frames_scored"] > 0 for e in r["per_episode"]) and r["protocol"] == 2


def test_recall_null_shuffles_the_models_own_answers():
    def rows(answers, cues, scored=None):
        return [{"predicted": a, "cue_object": c, "frames_scored": 1 if scored is None else scored[i]}
                for i, (a, c) in enumerate(zip(answers, cues))]
    cues = [0, 1, 1, 1, 2, 1, 0, 1]  # colour 1 is the cue in 5 of 8
    # always drawing colour 1: right 5 of 8 by its bias alone, as often under every shuffle
    assert answers_shuffled(rows([1] * 8, cues)) == {"shuffled_chance": 5 / 8, "p_value": 1.0}
    # the right answer each time: shuffles reach 8 of 8 only by the orders that keep the pairing
    perfect = answers_shuffled(rows(cues, cues))
    assert perfect["shuffled_chance"] == pytest.approx((2 * 2 + 5 * 5 + 1 * 1) / 64, abs=0.01)
    assert perfect["p_value"] < 0.01
    # episodes without a scored frame are left out; no ball drawn counts as wrong
    assert answers_shuffled(rows([0, None], [0, 1], scored=[1, 0])) == {"shuffled_chance": 1.0, "p_value": 1.0}
    assert answers_shuffled(rows([None, None], [0, 1]))["shuffled_chance"] == 0.0


def test_recall_leaves_out_episodes_whose_border_shows_the_cue():
    from types import SimpleNamespace
    colours = np.array(OBJECT_COLOURS[:3], dtype=np.uint8)

    def episode(cue, border, seed):  # 4 context frames, then 2 looking at the cue in the middle
        frames = np.full((6, 32, 32, 3), 100, dtype=np.uint8)
        frames[:, border_mask(32, 32)] = colours[border]
        frames[4:, 12:20, 12:20] = colours[cue]
        mask = torch.zeros(6, 32, 32, dtype=torch.bool)
        mask[4:, 12:20, 12:20] = True
        return SimpleNamespace(seed=seed, cue_object=cue, cue_colour=OBJECT_COLOURS[cue], maze_size=9,
                               context_length=4, frames=torch.from_numpy(frames), cue_mask=mask, protocol=2), frames[4:]

    made = [episode(0, 0, 1), episode(1, 2, 2), episode(2, 0, 3)]  # the first one's border shows its cue
    draws_border = [truth.copy() for _, truth in made]
    for frames, border in zip(draws_border, (0, 2, 0)):
        frames[:, 12:20, 12:20] = colours[border]  # a model copying the border's colour onto the ball
    r = recall_scores([e for e, _ in made], Rollouts(draws_border, [t for _, t in made], 0.0))
    assert [e["border_colour"] for e in r["per_episode"]] == [0, 2, 0]
    assert (r["episodes_scored"], r["border_shows_cue"], r["answers_in_border_colour"]) == (2, 1, 3)
    assert (r["accuracy"], r["accuracy_all"], r["reader_accuracy_on_truth"]) == (0.0, pytest.approx(1 / 3), 1.0)


def test_cue_reader_ignores_shading_and_muted_colours():
    candidates = np.array([[230, 25, 25], [25, 210, 25], [40, 80, 255]], dtype=np.uint8)
    frames = np.full((1, 4, 4, 3), 128, dtype=np.uint8)  # grey: no ball
    mask = np.ones((1, 4, 4), dtype=bool)
    assert read_cue_colour(frames, mask, candidates) is None
    frames[0, :2] = (22, 44, 140)  # a dim, shaded blue ball
    assert read_cue_colour(frames, mask, candidates) == 2
    # scored frames: the last sighting only (the agent back at the cue), not earlier glimpses
    assert final_run(np.array([0, 1, 1, 0, 1, 1, 0], bool)).tolist() == [0, 0, 0, 0, 1, 1, 0]


def test_teacher_forcing_keeps_the_true_frames_in_memory(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 7, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 6, (2, 7), generator=g)
    sim = Simulator(model, SamplerSettings(steps=1), device="cpu")
    episodes = (list(frames), list(actions), [(3, 7), (3, 7)], [0, 1])
    _generate(sim, *episodes, teacher_forced=True)
    forced = sim.cache
    truth = sim.prefill(frames, actions[:, :-1])  # the memory after all seven true frames
    for a, b in zip(forced.layers, truth.layers):
        for name in a:
            torch.testing.assert_close(a[name], b[name], atol=2e-4, rtol=1e-4)
    _generate(sim, *episodes, teacher_forced=False)
    assert not torch.allclose(sim.cache.layers[0]["ssm"], truth.layers[0]["ssm"], atol=1e-3)


@pytest.mark.parametrize("teacher_forced", [False, True])
def test_episodes_of_different_lengths_batch_as_they_run_alone(tiny_checkpoint, teacher_forced):
    """Cue recall's episodes all differ in context and length: batched, each gets its own frames."""
    model, _ = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    episodes = [Clip(torch.randint(0, 256, (n, 16, 16, 3), dtype=torch.uint8, generator=g),
                     torch.randint(0, 6, (n,), generator=g), c, seed)
                for seed, (c, n) in enumerate([(3, 9), (5, 7), (2, 8)])]
    sim = Simulator(model, SamplerSettings(steps=1), device="cpu")
    batched = rollout(sim, episodes, teacher_forced=teacher_forced, batch_size=3)
    alone = rollout(sim, episodes, teacher_forced=teacher_forced, batch_size=1)
    assert [len(f) for f in batched.generated] == [6, 2, 6]
    for a, b in zip(batched.generated, alone.generated):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float noise between batch sizes, at most


def test_next_frame_on_user_shards(tmp_path, tiny_checkpoint):
    g = np.random.default_rng(0)
    with ShardWriter(tmp_path / "shards", env_id="user/Env-v0", action_space=spaces.Discrete(6), frame_size=16) as w:
        for _ in range(2):
            w.write_episode(g.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8), g.integers(0, 6, 20),
                            np.zeros(20), np.zeros(20, dtype=bool))
    r = run_eval(tmp_path, tiny_checkpoint, "next-frame", "--data", str(tmp_path / "shards"), "--context", "5",
                 "--generate", "3")
    assert r["data"].endswith("shards") and len(r["episodes"]) == 2
    assert r["metrics"]["per_distance"]["distance"] == [1, 2, 3]


def test_eval_reports_bad_usage_without_a_traceback(tmp_path, tiny_checkpoint, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "nope"), "--task", "retrieval"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), "--task", "recall", "--data", str(tmp_path)]) == 2
    assert "next-frame" in capsys.readouterr().err


def test_context_kept_gives_the_model_only_the_last_frames_of_the_context(tiny_checkpoint):
    """Cutting the memory to K frames is the same rollout as an episode that starts K frames before
    its context ends; the scored frames stay the episode's."""
    model, _ = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    episodes = [Clip(torch.randint(0, 256, (n, 16, 16, 3), dtype=torch.uint8, generator=g),
                     torch.randint(0, 6, (n,), generator=g), c, seed)
                for seed, (c, n) in enumerate([(6, 10), (5, 9)])]
    sim = Simulator(model, SamplerSettings(steps=1), device="cpu")
    cut = rollout(sim, episodes, teacher_forced=True, context_kept=2)
    started_late = rollout(sim, [Clip(e.frames[e.context_length - 2:], e.actions[e.context_length - 2:], 2, e.seed)
                                 for e in episodes], teacher_forced=True)
    whole = rollout(sim, episodes, teacher_forced=True)
    for a, b, c, t in zip(cut.generated, started_late.generated, whole.generated, cut.truth):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert np.abs(a.astype(int) - c.astype(int)).max() > 1  # the earlier context changed the frames
        assert len(t) == len(a) == 4
    kept_all = rollout(sim, episodes, teacher_forced=True, context_kept=6)
    assert all(np.array_equal(a, b) for a, b in zip(kept_all.generated, whole.generated))


def test_eval_records_the_context_kept(tmp_path, tiny_checkpoint):
    r = run_eval(tmp_path, tiny_checkpoint, "retrieval", "--context", "6", "--generate", "2", "--teacher-forced",
                 "--context-kept", "3")
    assert r["context_kept"] == 3 and r["teacher_forced"] is True
