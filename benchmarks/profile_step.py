"""Where a generated frame's time goes: the engine's step split by sublayer (SSM, attention, MLP).

    python benchmarks/profile_step.py [--threads 2] [--frames 10] [--layouts shipped,whole]

For each SSM block layout, a random-init `small` model (cost does not depend on the weights) is
stepped at batch 1 with the shipped 2 sampler steps; forward hooks time every sublayer call, and
the SSD scan inside the SSM layers is timed by block shape. Layouts alternate within each round so
load from other jobs falls on all alike. Prints a table (ms per generated frame) and writes JSON.
"""

from __future__ import annotations

import argparse
import collections
import time

import torch

import worldsim.model.block_ssm as block_ssm
from worldsim.bench import actions, random_context
from worldsim.config import preset
from worldsim.diffusion import SamplerSettings
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.model import LSSVWM
from worldsim.simulator import Simulator

LAYOUTS = {"shipped": None, "whole_4x4": ((8, 8), (4, 4)) * 4, "whole": ((8, 8),) * 8}
SUBLAYERS = ("ssm", "attn", "mlp")


class Timings:
    """Seconds per named part, accumulated by forward hooks while `active` names a layout."""

    def __init__(self):
        self.active, self.seconds, self._start = None, collections.defaultdict(collections.Counter), {}

    def hook(self, module: torch.nn.Module, name: str) -> None:
        def pre(*_):
            self._start[name] = time.perf_counter()

        def post(*_):
            if self.active is not None:
                self.seconds[self.active][name] += time.perf_counter() - self._start[name]

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)

    def timed_scan(self, scan):
        def wrapper(x, *args, **kwargs):
            start = time.perf_counter()
            out = scan(x, *args, **kwargs)
            if self.active is not None:
                self.seconds[self.active][f"scan, {x.shape[1]} steps x {x.shape[0]} sequences"] += time.perf_counter() - start
            return out
        return wrapper


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=10, help="timed frames per layout per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--layouts", default=",".join(LAYOUTS), help=f"comma-separated, of {list(LAYOUTS)}")
    p.add_argument("--out", default="benchmarks/results/profile_step.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.layouts.split(",") if n.strip()]
    unknown = set(names) - set(LAYOUTS)
    if unknown:
        raise SystemExit(f"unknown layouts {sorted(unknown)}; choose from {list(LAYOUTS)}")

    timings = Timings()
    block_ssm.ssd_scan = timings.timed_scan(block_ssm.ssd_scan)
    sims, wall = {}, collections.defaultdict(float)
    for name in names:
        cfg = preset("small") if LAYOUTS[name] is None else preset("small", ssm_blocks=LAYOUTS[name])
        torch.manual_seed(0)
        sim = Simulator(LSSVWM(cfg), SamplerSettings(steps=2), device="cpu")
        for layer in sim.model.layers:
            for part in SUBLAYERS:
                if getattr(layer, part, None) is not None:
                    timings.hook(getattr(layer, part), part)
        timings.hook(sim.model, "model")
        sim.reset(random_context(cfg, 1).expand(1, 20, -1, -1, -1).contiguous(), torch.ones(1, 19, dtype=torch.long))
        for _ in range(2):  # warm-up
            sim.step(actions(cfg, 1))
        sims[name] = sim
    for _ in range(args.rounds):
        for name, sim in sims.items():
            timings.active = name
            start = time.perf_counter()
            for _ in range(args.frames):
                sim.step(actions(sim.cfg, 1))
            wall[name] += time.perf_counter() - start
            timings.active = None

    frames = args.frames * args.rounds
    rows = {name: {"blocks": [list(b) for b in sims[name].cfg.ssm_blocks], "ms_per_frame": 1e3 * wall[name] / frames,
                   "parts_ms_per_frame": {k: 1e3 * v / frames for k, v in timings.seconds[name].items()}}
            for name in names}
    parts = sorted({k for r in rows.values() for k in r["parts_ms_per_frame"]} - {"model"})
    print(f"\ncpu, {args.threads} thread(s), batch 1, 2 sampler steps, {frames} frames per layout\n")
    print("| layout | ms/frame | model | " + " | ".join(parts) + " |")
    print("|---|---:|---:|" + "---:|" * len(parts))
    for name, r in rows.items():
        cells = " | ".join(f"{r['parts_ms_per_frame'].get(k, 0.0):.1f}" for k in parts)
        print(f"| {name} | {r['ms_per_frame']:.1f} | {r['parts_ms_per_frame']['model']:.1f} | {cells} |")
    write_json(args.out, {"layouts": rows}, provenance(args, torch.device("cpu")))


if __name__ == "__main__":
    main()
