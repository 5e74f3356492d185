"""Toy (BENCHMARKS.md, "Growing the trunk"), run from the repository root after base.json's run:
grow the base's 4 layers to 6 as copies [0, 1, 1, 2, 3, 3] whose sublayer output projections are
zeroed, gates left open as copied. The identity at step 0 like a shut copy, but each output
projection gets a gradient that depends on what the frame shows. Saved as a step-0 run for
quiet.json to start from."""
import dataclasses

import torch

from worldsim.train.config import load_train_config
from worldsim.train.trainer import Trainer

cfg = load_train_config("benchmarks/results/grown_trunk/toy/copy.json")
cfg = dataclasses.replace(cfg, init_shut_layers=())
t = Trainer(cfg, "runs/s31/toy/quiet_init", device="cpu", show_progress=False)
t.init_from(cfg.init_from, layers=cfg.init_layers)
with torch.no_grad():
    for m in (t.model, t.ema):
        for i in (2, 5):
            for lin in (m.layers[i].ssm.out_proj, m.layers[i].attn.proj, m.layers[i].mlp[2]):
                lin.weight.zero_()
                if lin.bias is not None:
                    lin.bias.zero_()
print(t.save())
