"""Quantized flow storage: JPEG pairs + flow.json, npz, the rawframes convention."""

import json

import numpy as np
import pytest
import torch

from deepvideo.flow import num_flow_fields, read_flow, read_flow_meta, write_flow
from deepvideo.flow.store import FlowStoreError, dequantize, quantize


def _smooth_flow(t=3, h=48, w=64, amp=8.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(t, 2, 4, 5, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True) * amp


def test_quantize_maps_bound_to_0_255_and_step():
    q = quantize(np.array([-25.0, -20.0, 0.0, 20.0, 30.0]), bound=20)
    assert q.tolist() == [0, 0, 128, 255, 255]
    step = 40 / 255
    assert dequantize(np.array([0, 255], np.uint8), 20).tolist() == pytest.approx([-20, 20])
    assert float(dequantize(np.array([1], np.uint8), 20)[0] - dequantize(np.array([0], np.uint8), 20)[0]) \
        == pytest.approx(step, rel=1e-5)


def test_npz_round_trip_within_half_a_quantization_step(tmp_path):
    flow = _smooth_flow()
    path = write_flow(tmp_path / "v" / "flow.npz", flow, method="dis")
    back = read_flow(path)
    assert back.dtype == torch.float32 and back.shape == flow.shape
    err = (back - flow.clamp(-20, 20)).abs().max().item()
    assert err <= 20 / 255 + 1e-5  # half of the 40/255 step
    assert read_flow_meta(path)["method"] == "dis" and num_flow_fields(path) == 3
    assert num_flow_fields(tmp_path / "v") == 3  # folder holding flow.npz


def test_jpg_round_trip_within_documented_error(tmp_path):
    flow = _smooth_flow(amp=10.0)
    flow[0, 0, :5, :5] = 35.0  # beyond the bound: clipped
    folder = write_flow(tmp_path / "flowdir", flow, bound=20.0, method="tvl1")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["flow.json", "x_00001.jpg", "x_00002.jpg", "x_00003.jpg",
                     "y_00001.jpg", "y_00002.jpg", "y_00003.jpg"]
    meta = json.loads((folder / "flow.json").read_text())
    assert meta["bound"] == 20.0 and meta["count"] == 3 and (meta["height"], meta["width"]) == (48, 64)
    assert meta["jpeg_quality"] == 95 and meta["method"] == "tvl1"
    back = read_flow(folder)
    err = (back - flow.clamp(-20, 20)).abs()
    assert err.mean() < 0.1 and err.max() < 1.5  # the figures documented in deepvideo.flow.store
    assert back[0, 0, :3, :3].min() > 19.0


def test_read_indices_any_order_and_out_of_range(tmp_path):
    flow = _smooth_flow(t=4)
    write_flow(tmp_path / "f.npz", flow)
    write_flow(tmp_path / "j", flow)
    for path in (tmp_path / "f.npz", tmp_path / "j"):
        sub = read_flow(path, [3, 0, 3])
        full = read_flow(path)
        assert torch.equal(sub, full[[3, 0, 3]])
        with pytest.raises(IndexError, match="out of range"):
            read_flow(path, [4])


def test_rewrite_existing_folder_removes_stale_fields(tmp_path):
    write_flow(tmp_path / "j", _smooth_flow(t=4))
    write_flow(tmp_path / "j", _smooth_flow(t=2, seed=1))
    assert num_flow_fields(tmp_path / "j") == 2
    assert not (tmp_path / "j" / "x_00003.jpg").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_missing_and_corrupt_flow_named(tmp_path):
    with pytest.raises(FlowStoreError, match="not found"):
        read_flow(tmp_path / "nope")
    folder = write_flow(tmp_path / "j", _smooth_flow(t=2))
    (folder / "y_00002.jpg").write_bytes(b"garbage")
    with pytest.raises(FlowStoreError, match="y_00002.jpg"):
        read_flow(folder)
    with pytest.raises(ValueError, match=r"\[T,2,H,W\]"):
        write_flow(tmp_path / "bad", torch.zeros(2, 3, 4, 4))


def test_reads_rawframes_without_flow_json(shared_data):
    folder = shared_data / "video" / "rawframes"
    assert num_flow_fields(folder) == 5
    flow = read_flow(folder, [0, 4])
    assert flow.shape == (2, 2, 240, 320)
    assert flow.abs().max() <= 20.0 + 1e-5
    # the TSN convention: raw byte 128 is ~zero motion, most of a frame moves little
    assert flow.abs().median() < 2.0
