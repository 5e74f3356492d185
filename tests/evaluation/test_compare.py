"""The baseline comparison: parameter-matched variants, equal training, the paper-style table."""

import json

import pytest

from worldsim.cli import main
from worldsim.config import ARCHITECTURES, preset
from worldsim.evaluation.compare import count_parameters, parameter_matched


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
    result = json.loads((out / "compare.json").read_text())
    rows = result["table"]
    assert [r["architecture"] for r in rows] == list(ARCHITECTURES)
    lssvwm = rows[0]["parameters"]
    assert all(abs(r["parameters"] / lssvwm - 1) <= 0.1 for r in rows)
    assert all(r["lpips"] is None and 0 < r["psnr"] < 100 and r["paper"]["psnr"] > 0 for r in rows)
    assert result["provenance"]["config"]["sliding_window"] == 3  # the paper's 192 per 400 context frames
    assert set(result["provenance"]["checkpoints"]) == set(ARCHITECTURES)
    table = (out / "compare.md").read_text()
    assert len([line for line in table.splitlines() if line.startswith("| ") and "model" not in line]) == 5
    assert "| lssvwm |" in table and "30.8" in table and (out / "compare_metrics.png").is_file()
    assert "| full_attention |" in capsys.readouterr().out

    # run again: every model already has its checkpoint at step 2, so nothing is retrained
    before = {a: (out / a / "latest").read_text() for a in ARCHITECTURES}
    assert main(["eval", "--task", "compare", "--train-config", str(config), "--steps", "2", "--context", "6",
                 "--generate", "4", "--episodes", "1", "--sampling-steps", "1", "--architectures", "lssvwm",
                 "--out", str(out)]) == 0
    assert (out / "lssvwm" / "latest").read_text() == before["lssvwm"]
