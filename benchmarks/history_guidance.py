"""History guidance (DFoT, Song et al. 2025): does a frame drawn toward its memory, away from a
weak memory, take more from it? Measured before building it into the Simulator.

    python benchmarks/history_guidance.py --checkpoint maze --scales 1,1.25,1.5,2 --history-noise 0.7 \\
        --tasks next-frame:30:20,retrieval:50 --episodes 16 --out runs/history_guidance

Diffusion Forcing trains every frame at a noise level of its own, so the model also predicts a
frame after a memory whose frames are all noised to a level h (at h = 1 it knows only their
actions). Each sampler pass runs the model after the full memory and after that weak one and
takes v = v_weak + s (v_full - v_weak): s = 1 is the plain sampler, s > 1 extrapolates toward
what the memory adds (classifier-free guidance, with the history as the condition). Every frame
enters both memories: the full one as the Simulator commits it (true frames clean, generated ones
at the checkpoint's context noise), the weak one at h. A guided frame costs twice the passes.

Each task's held-out episodes are scored at every scale with the same noise, and each scale is
paired per episode with the first (mean difference +- s.e., episodes ahead). The first generated
frame at s = 1 is checked against the Simulator's (`worldsim eval`'s) frame: the script stops if
they differ by more than float rounding. Writes OUT/history_guidance.json. Long rollouts under
guidance: `python benchmarks/long_rollout.py --history-guidance SCALE:NOISE`. Measured on the shipped
model (BENCHMARKS.md, "History guidance"): no scale and weak-memory level helped both the next frame
and retrieval, so the Simulator does not have it.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

# benchmarks/ is the script's directory
from sampler_schedule import SCORE_HEADER, parse_task, score_cells  # noqa: E402
from worldsim.checkpoint import load_model
from worldsim.diffusion import (SamplerSettings, add_noise, alpha_sigma, predict_x0, prev_actions, to_model_space,
                                to_uint8)
from worldsim.episode_noise import EpisodeNoise
from worldsim.evaluation.lpips import load_lpips
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import Rollouts, lengths, maze_episodes, maze_size, rollout, score
from worldsim.simulator import Simulator

MAX_FIRST_FRAME_DIFFERENCE = 2  # grey levels between s = 1's first frame and the Simulator's


@dataclasses.dataclass
class Guidance:
    scale: float  # s: 1 = the plain sampler
    history_noise: float  # h: the weak memory's noise level


def commit(model, cache, x, level: float, produced, eps):
    """The memory after frames x [B, T, C, H, W] (model space) noised to `level` with eps."""
    levels = torch.full(x.shape[:2], level)
    return model(x if level == 0 else add_noise(x, levels, eps), levels, produced, cache=cache,
                 update_cache=True).cache


def guided_frame(model, full, weak, action, z, sampler: SamplerSettings, guidance: Guidance):
    """One frame [B, 1, C, H, W] from initial noise z, each pass guided by the weak memory."""
    taus = sampler.levels()
    for i in range(sampler.steps):
        tau = torch.full((z.shape[0], 1), taus[i])
        v = model(z, tau, action, cache=full).prediction
        if guidance.scale != 1:
            v_weak = model(z, tau, action, cache=weak).prediction
            v = v_weak + guidance.scale * (v - v_weak)
        x0 = predict_x0(z, v, tau)
        a, s = alpha_sigma(tau[..., None, None, None])
        eps = s * z + a * v
        a2, s2 = alpha_sigma(torch.tensor(taus[i + 1]))
        z = a2 * x0 + s2 * eps
    return x0


class GuidedSimulator:
    """The Simulator's reset / step / observe with history guidance, for the benchmarks that drive
    one (`generate` below, `long_rollout.py --history-guidance`): the two memories, the same noise."""

    def __init__(self, model, sampler: SamplerSettings, guidance: Guidance):
        self.model, self.sampler, self.guidance = model.eval(), sampler, guidance
        self.device = torch.device("cpu")
        self.full = self.weak = self.noise = self._commit_noise = None

    @torch.no_grad()
    def reset(self, frames: torch.Tensor, actions: torch.Tensor | None = None, seeds: list[int] | None = None):
        """Context frames uint8 [B, T, H, W, 3] and their actions [B, T-1] (Gym-aligned), as
        Simulator.reset; returns the last frames."""
        B, T = frames.shape[:2]
        seeds = list(range(B)) if seeds is None else list(seeds)
        x = to_model_space(frames)  # [B, T, C, H, W]
        actions = torch.zeros(B, T - 1, dtype=torch.long) if actions is None else torch.as_tensor(actions)
        produced = prev_actions(torch.cat([actions, torch.zeros(B, 1, dtype=actions.dtype)], 1))
        # the weak memory's context noise: each episode's from its own generator, as the sampler's
        weak_eps = torch.stack([torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(s)) for s in seeds])
        self.full = self.model.init_cache(B)
        self.weak = self.model.init_cache(B) if self.guidance.scale != 1 else None
        for s in range(0, T, Simulator.prefill_segment):  # committed as the Simulator commits context
            part = slice(s, s + Simulator.prefill_segment)
            self.full = commit(self.model, self.full, x[:, part], 0.0, produced[:, part], None)
            if self.weak is not None:
                self.weak = commit(self.model, self.weak, x[:, part], self.guidance.history_noise, produced[:, part],
                                   weak_eps[:, part])
        self.noise = EpisodeNoise(seeds, x.shape[2:])
        return frames[:, -1]

    @torch.no_grad()
    def step(self, actions: torch.Tensor, commit_frame: bool = True):
        """The next frames uint8 [B, H, W, 3] after `actions` [B] (reward and termination: None),
        committed to both memories unless `commit_frame` is False (teacher forcing: `observe` then)."""
        n = self.noise.next()  # [2, B, C, H, W]: the sampler's start, the commit's
        self._commit_noise = n[1][:, None]
        action = torch.as_tensor(actions).reshape(-1, 1)
        x0 = guided_frame(self.model, self.full, self.weak, action, n[0][:, None], self.sampler, self.guidance)
        if commit_frame:
            self._commit_both(x0, action, self.sampler.context_noise)
        return to_uint8(x0[:, 0]), None, None

    @torch.no_grad()
    def observe(self, frames: torch.Tensor, actions: torch.Tensor) -> None:
        """Commit true frames uint8 [B, 1, H, W, 3] that `actions` [B, 1] produced (clean in the full memory)."""
        self._commit_both(to_model_space(frames), torch.as_tensor(actions), 0.0)

    def _commit_both(self, x, action, level: float) -> None:
        self.full = commit(self.model, self.full, x, level, action, self._commit_noise)
        if self.weak is not None:
            weak_level = max(self.guidance.history_noise, level)
            self.weak = commit(self.model, self.weak, x, weak_level, action, self._commit_noise)


def generate(model, frames, actions, spans, seeds, sampler: SamplerSettings, guidance: Guidance,
             teacher_forced: bool) -> list[np.ndarray]:
    """As `evaluation.tasks._generate` (the same batches, noise and commits), guided."""
    contexts = {c for c, _ in spans}
    if len(contexts) != 1:
        raise ValueError(f"a batch shares one context length here, got {sorted(contexts)}")
    c = contexts.pop()
    sim = GuidedSimulator(model, sampler, guidance)
    sim.reset(torch.stack([f[:c] for f in frames]), torch.stack([a[:c - 1] for a in actions]), seeds)
    steps = max(end - c for _, end in spans)
    t = [torch.arange(c, c + steps).clamp(max=end - 1) for _, end in spans]
    into = torch.stack([a[tj - 1] for a, tj in zip(actions, t)])  # [B, steps]: the action into each frame
    out = []
    for k in range(steps):
        out.append(sim.step(into[:, k], commit_frame=not teacher_forced)[0].numpy())
        if teacher_forced:
            sim.observe(torch.stack([f[tj[k]] for f, tj in zip(frames, t)])[:, None], into[:, k:k + 1])
    out = np.stack(out, 1)
    return [out[j, :end - c] for j, (c, end) in enumerate(spans)]


def guided_rollout(model, episodes, generate_frames, sampler, guidance, teacher_forced, batch_size) -> Rollouts:
    spans = [(e.context_length, len(e.frames) if generate_frames is None
              else min(len(e.frames), e.context_length + generate_frames)) for e in episodes]
    generated = [None] * len(episodes)
    by_context: dict[int, list[int]] = {}
    for i, (c, _) in enumerate(spans):
        by_context.setdefault(c, []).append(i)
    for idx in by_context.values():
        for b in range(0, len(idx), batch_size):
            part = idx[b:b + batch_size]
            out = generate(model, [episodes[i].frames for i in part],
                           [torch.as_tensor(episodes[i].actions) for i in part], [spans[i] for i in part],
                           [int(episodes[i].seed) for i in part], sampler, guidance, teacher_forced)
            for j, i in enumerate(part):
                generated[i] = out[j]
    truth = [e.frames[c:end].numpy() for e, (c, end) in zip(episodes, spans)]
    return Rollouts(generated, truth, float("nan"))


def check_against_simulator(model, config, episodes, guided: Rollouts, teacher_forced) -> int:
    """Max difference (grey levels) of the first generated frames at s = 1 from the Simulator's."""
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    plain = rollout(sim, episodes, 1, teacher_forced)
    return max(int(np.abs(p[0].astype(int) - g[0].astype(int)).max())
               for p, g in zip(plain.generated, guided.generated))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--scales", default="1,2", help="comma-separated guidance scales, the first the baseline")
    p.add_argument("--history-noise", type=float, default=1.0, help="noise level h of the weak memory's frames")
    p.add_argument("--tasks", default="next-frame:30:20,retrieval:50", help="comma-separated TASK[:CONTEXT[:GENERATE]]")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/history_guidance")
    args = p.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    if args.episodes < 2:
        p.error(f"--episodes must be >= 2 (each scale is paired with the first over the episodes), got {args.episodes}")
    if not 0 < args.history_noise <= 1:
        p.error(f"--history-noise is a noise level in (0, 1], got {args.history_noise}")
    torch.set_num_threads(args.threads)
    model, config = load_model(args.checkpoint)
    model.eval()
    sampler = SamplerSettings.from_config(config)
    lpips_net = load_lpips()
    prov = provenance(args, torch.device("cpu"), checkpoints={"model": config["path"]})
    report = {"scales": scales, "history_noise": args.history_noise, "sampler": dataclasses.asdict(sampler),
              "tasks": []}
    out = Path(args.out)
    for task, context, generate_frames in (parse_task(t) for t in args.tasks.split(",")):
        context, generate_frames = lengths(task, context, generate_frames)
        episodes = maze_episodes(task, args.episodes, context, generate_frames, maze_size(config), model.cfg.image_size)
        teacher_forced = task == "next-frame"
        rows = []
        for scale in scales:
            guidance = Guidance(scale, args.history_noise)
            r = guided_rollout(model, episodes, generate_frames, sampler, guidance, teacher_forced, args.batch_size)
            if scale == 1:
                difference = check_against_simulator(model, config, episodes, r, teacher_forced)
                if difference > MAX_FIRST_FRAME_DIFFERENCE:
                    raise SystemExit(f"s = 1 is not the plain sampler: its first frames differ from the Simulator's "
                                     f"by {difference} grey levels")
                report.setdefault("first_frames_vs_simulator_grey_levels", {})[task] = difference
            metrics = score(r, lpips_net)
            rows.append({"scale": scale, "mean": metrics["mean"], "per_episode": metrics["per_episode"],
                         "per_distance_psnr": metrics["per_distance"]["psnr"]})
            report["tasks"].append({"task": task, "context": context, "generate": generate_frames, **rows[-1]})
            write_json(out / "history_guidance.json", report, prov)
        print(f"\n{task}, context {context}, {len(episodes)} episodes, {sampler.steps} sampler steps, "
              f"history noise {args.history_noise:g}:\n")
        print(f"| scale | {SCORE_HEADER} |\n|---|{'---|' * SCORE_HEADER.count('|')}---|")
        for r in rows:
            print(f"| {r['scale']:g} | {score_cells(r, rows[0])} |")
    print(f"\nwrote {out / 'history_guidance.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
