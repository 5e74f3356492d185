"""Run by test_ddp_two_processes_on_gloo under torchrun: 3 DDP steps on CPU, each rank its own data."""

import sys
from pathlib import Path

import torch.distributed as dist

from conftest import FixedSource
from test_trainer import tiny_cfg
from worldsim.checkpoint import save_tensors
from worldsim.train.trainer import Trainer

out = Path(sys.argv[1])
rank = int(__import__("os").environ["RANK"])
trainer = Trainer(tiny_cfg(segment_frames=4), out / "run", device="cpu", source=FixedSource(seed=rank))
trainer.fit(3)
(out / f"rank{rank}").mkdir(parents=True, exist_ok=True)
save_tensors(trainer.model.state_dict(), out / f"rank{rank}", "model")
dist.destroy_process_group()
