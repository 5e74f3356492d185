"""Benchmarks that compute a figure from the model are checked against a case worked by hand."""

import importlib.util
from pathlib import Path

import torch

from worldsim.config import preset
from worldsim.model import LSSVWM


def load_benchmark(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
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
