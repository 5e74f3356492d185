"""Provenance identifies the weights by content and records how a file was made."""

import argparse
import json
import shutil

import pytest
from matplotlib.figure import Figure
from PIL import Image

from worldsim.evaluation.provenance import PNG_KEY, checkpoint_sha256, command_line, provenance, save_figure, write_json


def test_checkpoint_hash_follows_the_weights_not_the_json(tmp_path, tiny_checkpoint):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_checkpoint, copy)
    assert checkpoint_sha256(copy) == checkpoint_sha256(tiny_checkpoint)
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    assert checkpoint_sha256(copy) == checkpoint_sha256(tiny_checkpoint)
    shard = next(copy.glob("*.safetensors"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    assert checkpoint_sha256(copy) != checkpoint_sha256(tiny_checkpoint)
    with pytest.raises(FileNotFoundError):
        checkpoint_sha256(tmp_path)


def test_provenance_is_attached_to_json_and_png(tmp_path, tiny_checkpoint):
    args = argparse.Namespace(command="eval", task="retrieval", episodes=2, data=None, dry=False, fast=True)
    assert command_line(args) == "worldsim eval --episodes 2 --fast --task retrieval"
    prov = provenance(args, "cpu", config={"x": 1}, checkpoints={"model": tiny_checkpoint})
    assert prov["device"].startswith("cpu") and prov["torch"] and prov["date"].startswith("20")
    assert len(prov["checkpoints"]["model"]["sha256"]) == 64
    written = json.loads(write_json(tmp_path / "r.json", {"value": 1.5}, prov).read_text())
    assert written == {"provenance": prov, "value": 1.5}
    with pytest.raises(ValueError):
        write_json(tmp_path / "bad.json", {"value": float("inf")}, prov)  # strict JSON
    fig = Figure(layout="constrained")
    fig.subplots().plot([0, 1])
    assert json.loads(Image.open(save_figure(fig, tmp_path / "p.png", prov)).text[PNG_KEY]) == prov


def test_stored_floats_keep_six_significant_digits_and_large_ones_all(tmp_path):
    prov = provenance(None, "cpu")
    payload = {"psnr": [[13.470912170410156, 0.27345678901]], "flops": 3860331520.123, "episodes": 7,
               "pair": (1e-7 / 3, -2.0)}
    written = json.loads(write_json(tmp_path / "r.json", payload, prov).read_text())
    assert written["psnr"] == [[13.4709, 0.273457]] and written["flops"] == 3860331520.123
    assert written["episodes"] == 7 and written["pair"] == [3.33333e-08, -2.0]
