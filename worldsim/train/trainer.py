"""The training loop: AdamW with warmup + cosine, gradient clipping, EMA, bf16 autocast on CUDA,
DDP under torchrun, atomic resumable checkpoints (also on SIGINT/SIGTERM), JSONL metrics, tqdm
progress and periodic sample videos (model beside ground truth).

Resuming restores weights, EMA, optimizer and RNG states and the step; the data stream restarts
deterministically from (seed, step, rank) rather than from the generator's exact position.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from worldsim.checkpoint import load_config, load_model, load_tensors, resolve, write_checkpoint
from worldsim.diffusion import ObjectiveConfig, SamplerSettings
from worldsim.model import LSSVWM
from worldsim.train.config import TrainConfig
from worldsim.train.objective import (PreparedWindow, WindowObjective, WindowPlan, own_context, plan_window,
                                      prepare_window)
from worldsim.train.samples import write_sample_video
from worldsim.video import require_ffmpeg


def setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device != "cpu"
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return rank, world, dev


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warmup: early on the average must not keep the random initial weights
    (at 0.999 a plain EMA still holds 15% of them after 1,900 steps)."""
    return min(decay, (1 + step) / (10 + step))


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict, list]:
    sd = opt.state_dict()
    tensors = {f"{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items() if torch.is_tensor(v)}
    return tensors, sd["param_groups"]


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict, param_groups: list) -> None:
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        i, k = name.split(".", 1)
        state.setdefault(int(i), {})[k] = t
    opt.load_state_dict({"state": state, "param_groups": param_groups})


def map_layers(theirs: dict[str, Tensor], fresh: dict[str, Tensor], layers: tuple[int, ...],
               their_depth: int) -> dict[str, Tensor]:
    """A state dict for a trunk whose layer i is `theirs`' layer layers[i] (-1: `fresh`'s layer i);
    tensors outside the trunk are theirs."""
    if any(src >= their_depth for src in layers):
        raise ValueError(f"init_layers {list(layers)} names a layer the checkpoint lacks (it has {their_depth})")
    out = {k: v for k, v in theirs.items() if not k.startswith("layers.")}
    for i, src in enumerate(layers):
        source, prefix = (fresh, f"layers.{i}.") if src < 0 else (theirs, f"layers.{src}.")
        out.update({f"layers.{i}." + k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)})
    return out


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: str | Path, device: str = "auto", source=None,
                 show_progress: bool = True):
        self.show_progress = show_progress
        self.cfg, self.out = cfg, Path(out_dir)
        self.rank, self.world, self.device = setup_distributed(device)
        self.is_main = self.rank == 0
        if source is None:
            from worldsim.train.data import make_source  # the maze renderer loads only when used

            source = make_source(cfg, self.device, self.rank)
        self.source = source
        if cfg.sample_every and self.is_main:
            require_ffmpeg()  # fail now, not at the first sample an hour in
        torch.manual_seed(cfg.seed)
        self.model = LSSVWM(self.source.adapt_model_config(cfg.model)).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.objective = WindowObjective(self.model, ObjectiveConfig(
            long_context_prob=cfg.long_context_prob, reward_weight=cfg.reward_weight,
            termination_weight=cfg.termination_weight, sparse_target_prob=cfg.sparse_target_prob,
            sparse_target_rate=cfg.sparse_target_rate))
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.dim() < 2 or name.endswith(("A_log", "dt_bias", "pos")) else decay).append(p)
        fused = self.device.type == "cuda"
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.99),
                                     fused=fused)
        self.step = 0
        self.runner = self.objective
        if self.world > 1:
            self.runner = DistributedDataParallel(self.objective, device_ids=[self.device.index] if fused else None)
        seed = cfg.seed * 7919 + self.rank
        self.generator = torch.Generator().manual_seed(seed)  # window plans (CPU)
        self.noise_generator = torch.Generator(self.device).manual_seed(seed)  # noise, on the training device
        self.stop_requested = False
        # the sampler settings a checkpoint of this run is generated with; a run started from another
        # checkpoint keeps that one's, which were chosen by measurement for the weights it starts from
        self.sampling = dataclasses.asdict(SamplerSettings())

    # -- checkpoints -------------------------------------------------------------------------
    def config_json(self) -> dict:
        return {"model": json.loads(self.model.cfg.to_json()), "train": _jsonable(self.cfg.to_dict()),
                "source": self.source.describe(), "sampling": dict(self.sampling)}

    def save(self) -> Path | None:
        if not self.is_main:
            return None
        opt_tensors, groups = optimizer_tensors(self.opt)
        state = {"step": self.step, "torch_rng": torch.get_rng_state().tolist(),
                 "generator": self.generator.get_state().tolist(),
                 "noise_generator": self.noise_generator.get_state().tolist(), "noise_device": self.device.type,
                 "optimizer_param_groups": groups,
                 "world_size": self.world}
        return write_checkpoint(self.out, f"step-{self.step:07d}", self.config_json(),
                                {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "optimizer": opt_tensors},
                                {"trainer_state.json": state})

    def init_from(self, checkpoint: str | Path, reinit: tuple[str, ...] = (), layers: tuple[int, ...] = (),
                  shut: tuple[int, ...] = ()) -> None:
        """Start from another run's weights (EMA when it has them) and sampler settings, with a fresh
        optimizer and step 0: continuing a model under a new recipe, e.g. longer windows, when its
        optimizer state is gone.
        The model config may differ where the parameters do not (another SSM block layout or attention
        window): the same tensors then start a model that scans or attends differently. Parameters
        whose names end in one of `reinit` keep this model's own initialisation (e.g. "ssm.dt_bias"
        and "ssm.A_log": the memory horizons of `ssm_dt_init` in otherwise trained weights).
        `layers` grows or re-orders the trunk: layer i takes their layer layers[i], or keeps its fresh
        initialisation where that is -1 (an identity map until trained, by its zeroed adaLN gates).
        The layers in `shut` then have their gates zeroed (`Layer.shut_gates`): identity maps too."""
        theirs, config = load_model(checkpoint, device=self.device)  # EMA weights when the run has them
        weights = theirs.state_dict()
        fresh = self.model.state_dict()
        if layers:
            weights = map_layers(weights, fresh, layers, len(theirs.layers))
        mine = {k: tuple(v.shape) for k, v in fresh.items()}
        shapes = {k: tuple(v.shape) for k, v in weights.items()}
        if shapes != mine:
            diff = sorted(k for k in set(mine) | set(shapes) if mine.get(k) != shapes.get(k))
            raise ValueError(f"init_from {config['path']}: its parameters differ from this run's model "
                             f"({len(diff)} tensors, e.g. {diff[:3]}: {[shapes.get(k) for k in diff[:3]]} vs "
                             f"{[mine.get(k) for k in diff[:3]]})")
        for suffix in reinit:
            names = [k for k in fresh if k.endswith(suffix)]
            if not names:
                raise ValueError(f"init_reinit {suffix!r} names no parameter of this model")
            weights.update({k: fresh[k] for k in names})
        self.model.load_state_dict(weights)
        for i in shut:
            self.model.layers[i].shut_gates()
        self.ema.load_state_dict(self.model.state_dict())
        self.sampling.update(config.get("sampling", {}))

    def resume(self, run_dir: str | Path) -> None:
        path = resolve(run_dir)
        state = json.loads((path / "trainer_state.json").read_text())
        self.sampling.update(load_config(path).get("sampling", {}))
        self.model.load_state_dict(load_tensors(path, "model", self.device))
        self.ema.load_state_dict(load_tensors(path, "ema", self.device))
        load_optimizer(self.opt, load_tensors(path, "optimizer", self.device), state["optimizer_param_groups"])
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        if state.get("noise_device") == self.device.type:  # generator states differ between CPU and CUDA
            self.noise_generator.set_state(torch.tensor(state["noise_generator"], dtype=torch.uint8))
        else:
            self.noise_generator.manual_seed(self.cfg.seed * 7919 + self.rank + 1_000_003 * int(state["step"]))
        self.step = int(state["step"])
        self.source.restart(self.step)

    # -- one optimizer step --------------------------------------------------------------------
    def train_step(self) -> dict:
        cfg = self.cfg
        window = cfg.window_at(self.step)
        t0 = time.perf_counter()
        batch = self.source.next(window, cfg.batch_at(self.step))
        if self.device.type == "cuda":
            torch.cuda.synchronize()  # the maze renders on the training device: count its time here
        data_seconds = time.perf_counter() - t0
        w = prepare_window(batch.frames.to(self.device), batch.actions.to(self.device), batch.rewards.to(self.device),
                           batch.terminated.to(self.device), self.objective.objective, self.noise_generator)
        plan = plan_window(w.x0.shape[0], window, cfg.segment_frames, cfg.state_reset_prob, self.generator,
                           cfg.attention_blind_prob, cfg.own_context_prob)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else contextlib.nullcontext()
        if plan.own_context_mask is not None:
            with autocast:
                w = own_context(self.model, w, plan.own_context_mask, cfg.own_context_noise, self.noise_generator)
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, cfg)
        logs = self.accumulate_gradients(w, plan, autocast)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        with torch.no_grad():
            ema_p, p = list(self.ema.parameters()), list(self.model.parameters())
            torch._foreach_lerp_(ema_p, p, 1.0 - ema_decay_at(self.step, cfg.ema_decay))
        self.step += 1
        return {"loss": logs["diffusion"] + logs["heads"], **logs, "grad_norm": float(grad_norm),
                "lr": self.opt.param_groups[0]["lr"], "window": window, "frames": w.x0.shape[0] * window * self.world,
                "data_seconds": data_seconds}

    def accumulate_gradients(self, w: PreparedWindow, plan: WindowPlan, autocast) -> dict[str, float]:
        """Zero the gradients and back-propagate the step's loss, micro-batch by micro-batch (windows)
        and, within each, temporal segment by segment. DDP all-reduces at the last backward only."""
        self.opt.zero_grad(set_to_none=True)
        logs = {"diffusion": 0.0, "heads": 0.0}
        totals = w.loss_totals()
        batch, m = w.x0.shape[0], self.cfg.micro_batches
        edges = [batch * i // m for i in range(m + 1)]
        parts = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
        for pi, part in enumerate(parts):
            part_w, part_plan, cache = w.rows(part), plan.rows(part), None
            for gi, spans in enumerate(plan.groups):
                last_group = gi == len(plan.groups) - 1
                last = last_group and pi == len(parts) - 1
                sync = contextlib.nullcontext() if (last or self.world == 1) else self.runner.no_sync()
                with sync:
                    with autocast:
                        loss, terms, cache = self.runner(part_w, spans, cache, part_plan, last_group, totals)
                    loss.backward()
                cache = None if cache is None else cache.detach()  # temporal segment boundary: truncate
                for k in logs:
                    logs[k] += float(terms[k])
        return logs

    # -- the loop --------------------------------------------------------------------------------
    def fit(self, steps: int) -> dict | None:
        """Train until `steps` optimizer steps in total. Saves every `save_every` and on SIGINT/SIGTERM."""
        previous = {s: signal.signal(s, self._request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        self.out.mkdir(parents=True, exist_ok=True)
        log = open(self.out / "metrics.jsonl", "a") if self.is_main else None
        bar = tqdm(total=steps, initial=self.step, disable=not (self.is_main and self.show_progress), desc="train",
                   dynamic_ncols=True)
        last = None
        # a logged row's `seconds` is its own step; the interval since the last row (saves and the
        # steps that re-render the maze pool included) gives the throughput the run really has
        new_interval = lambda: {"start": time.perf_counter(), "steps": 0, "frames": 0, "data_seconds": 0.0}  # noqa: E731
        interval = new_interval()
        try:
            while self.step < steps and not self.stop_requested:
                t0 = time.perf_counter()
                last = self.train_step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                last.update(step=self.step, seconds=dt, frames_per_s=last["frames"] / dt)
                for k in ("frames", "data_seconds"):
                    interval[k] += last[k]
                interval["steps"] += 1
                bar.update(1)
                bar.set_postfix(loss=f"{last['loss']:.4f}", fps=f"{last['frames_per_s']:.0f}", T=last["window"])
                if log and (self.step % self.cfg.log_every == 0 or self.step == steps):
                    wall = time.perf_counter() - interval["start"]
                    last.update(interval_steps=interval["steps"], interval_frames_per_s=interval["frames"] / wall,
                                interval_data_share=interval["data_seconds"] / wall)
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                    interval = new_interval()
                if self.step % self.cfg.save_every == 0:
                    self.save()
                if self.is_main and self.cfg.sample_every and self.step % self.cfg.sample_every == 0:
                    self.write_sample()
            self.save()
        finally:
            bar.close()
            if log:
                log.close()
            for s, h in previous.items():
                signal.signal(s, h)
        return last

    def _request_stop(self, signum, frame):
        self.stop_requested = True  # finish the current step, save, exit

    def write_sample(self) -> Path:
        batch = self.source.next(self.cfg.window_at(self.step), 1)
        path = self.out / "samples" / f"step-{self.step:07d}.mp4"
        write_sample_video(path, self.ema, batch.frames[0], batch.actions[0], self.device)
        return path


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig a run was started with (for --resume)."""
    config = load_config(resolve(run_dir))
    train = dict(config["train"])
    train["model"] = config["model"]
    return TrainConfig.from_dict(train)
