"""The checkpoints shipped in checkpoints/: what issue #7's acceptance asks of every one of them."""

import json

import pytest
from safetensors import safe_open

from worldsim.checkpoint import SHIPPED_DIR, load_model, shipped_names

SHIPPED = shipped_names()


def test_the_default_checkpoint_is_shipped():
    assert "maze" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_checkpoint_is_safetensors_shards_below_16_mib_and_json(name):
    folder = SHIPPED_DIR / name
    files = {p.name: p for p in folder.iterdir()}
    assert {p.suffix for p in files.values()} <= {".json", ".jsonl", ".safetensors", ".md"}, sorted(files)
    shards = sorted(n for n in files if n.endswith(".safetensors"))
    assert shards and all(files[n].stat().st_size < 16 * 2**20 for n in shards)
    weight_map = json.loads(files["model.index.json"].read_text())["weight_map"]
    assert sorted(set(weight_map.values())) == shards
    for shard in shards:  # each opens as safetensors and holds just the tensors the index names in it
        with safe_open(str(files[shard]), framework="pt") as f:
            assert sorted(f.keys()) == sorted(k for k, v in weight_map.items() if v == shard)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_checkpoint_loads_offline_on_cpu_with_the_sampler_settings_it_names(name, one_thread):
    model, config = load_model(name)
    assert config["sampling"]["steps"] >= 1 and 0 <= config["sampling"]["context_noise"] <= 1
    assert next(model.parameters()).device.type == "cpu"
    assert (SHIPPED_DIR / name / "MODEL_CARD.md").is_file()
