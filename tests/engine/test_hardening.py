"""Issue 12 in-process: damaged weight files, checkpoints that name code, NaN scores, --resume
rules, config errors that used to be tracebacks, and glob lists in overrides.

The same cases through the real command line: tests/cli/test_hardening_sweep.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from engine_helpers import TINY_MODEL, TensorClips, TinyNet

from deepvideo.engine.build import build_model, load_checkpoint, load_index
from deepvideo.engine.checkpoint import (
    CheckpointError,
    check_resumable,
    existing_checkpoints,
    load_train_state,
    load_weights,
    read_meta,
    save_checkpoint,
)
from deepvideo.engine.config import ConfigError, load_config, parse_override
from deepvideo.engine.evaluate import NonFiniteScoresError, Predictor, check_finite_scores, predict_videos
from deepvideo.engine.loop import train
from deepvideo.models.convert.files import WeightsFileError, read_safetensors, read_torch_file


def _cfg(out, *overrides):
    return load_config(overrides=[f"model.name={TINY_MODEL}", f"output_dir={out}", "data.num_workers=0",
                                  "train.amp=none", "train.epochs=1", "train.batch_size=4",
                                  "train.schedule=constant", *overrides])


def _checkpoint(folder, **config):
    cfg = _cfg(folder.parent / "unused", *(f"{k}={v}" for k, v in config.items()))
    from deepvideo.engine.config import config_to_dict

    meta = {"config": config_to_dict(cfg), "class_names": ["a", "b"], "epoch": 1}
    return save_checkpoint(folder, TinyNet(2), meta, {"epoch": 1})


# --- damaged files ------------------------------------------------------------------------------

def test_torch_files_damaged_anywhere_are_one_line_errors(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"w": torch.arange(300.0), "epoch": 3}, path)
    assert torch.equal(read_torch_file(path)["w"], torch.arange(300.0))  # an intact file reads back
    data = path.read_bytes()
    for keep in (0, 1, 4, 30, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:keep])
        with pytest.raises(WeightsFileError) as err:
            read_torch_file(path)
        message = str(err.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        expected = "empty file (0 bytes)" if keep == 0 else "damaged" if keep > 1 else "not a PyTorch"
        assert expected in message
    path.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(WeightsFileError, match="not a PyTorch file"):
        read_torch_file(path)


def test_legacy_torch_files_cut_short_are_named(tmp_path):
    path = tmp_path / "old.pth"
    torch.save({"w": torch.ones(50)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(read_torch_file(path)["w"], torch.ones(50))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(WeightsFileError, match=r"old\.pth: damaged PyTorch file \(truncated\?\)"):
        read_torch_file(path)


def test_safetensors_damaged_anywhere_are_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.arange(100.0), "b": torch.zeros(3, 4)}, str(path))
    assert torch.equal(read_safetensors(path)["a"], torch.arange(100.0))
    data = path.read_bytes()
    cases = {0: r"empty file \(0 bytes\)", 5: "header too small", 100: "invalid header length",
             len(data) - 8: "incomplete metadata"}
    for keep, reason in cases.items():
        path.write_bytes(data[:keep])
        with pytest.raises(WeightsFileError, match=reason) as err:
            read_safetensors(path)
        assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_checkpoint_readers_name_the_damaged_file(tmp_path):
    folder = _checkpoint(tmp_path / "c")
    (folder / "train_state.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"c/train_state\.pt: empty file"):
        load_train_state(folder)
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(CheckpointError, match=r"c/model\.safetensors: damaged safetensors file \(truncated"):
        load_weights(TinyNet(2), folder)
    (folder / "checkpoint.json").write_text('{"config": {')
    with pytest.raises(CheckpointError, match=r"c/checkpoint\.json: invalid JSON, the file is damaged"):
        read_meta(folder)
    (folder / "checkpoint.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="a JSON object is expected"):
        read_meta(folder)


def test_pretrained_from_a_damaged_checkpoint_is_a_config_error(tmp_path):
    folder = _checkpoint(tmp_path / "c")
    (folder / "model.safetensors").write_bytes(b"\x00" * 16)
    cfg = _cfg(tmp_path / "run", f"model.pretrained={folder}")
    with pytest.raises(ConfigError, match=r"^model\.pretrained: .*c/model\.safetensors: damaged safetensors"):
        build_model(cfg, 2)


# --- checkpoints import nothing they name ---------------------------------------------------------

PLUGIN = """
from pathlib import Path
from deepvideo.models.registry import register_model
from engine_helpers import TINY_SPEC, tiny_net

Path(__file__).with_name("MARKER").touch()
try:
    register_model("{name}", tiny_net, TINY_SPEC)
except ValueError:
    pass
"""


def _plugin(tmp_path, name):
    path = tmp_path / f"plugin_{name}.py"
    path.write_text(PLUGIN.replace("{name}", name))
    return path


def test_a_checkpoint_naming_code_is_refused_unless_allowed(tmp_path):
    plugin = _plugin(tmp_path, "hardening_plugin_net")
    folder = _checkpoint(tmp_path / "c", **{"model.name": "hardening_plugin_net",
                                            "model.imports": f"[{plugin}]"})
    with pytest.raises(CheckpointError, match=r"c/checkpoint\.json: model 'hardening_plugin_net' is not "
                                              r"registered .*--allow-imports"):
        load_checkpoint(folder)
    assert not (tmp_path / "MARKER").exists()
    model, cfg, names, _ = load_checkpoint(folder, allow_imports=True)  # the user's opt-in
    assert (tmp_path / "MARKER").exists() and names == ["a", "b"]
    assert cfg.model.imports == [str(plugin)] and model.model_name == "hardening_plugin_net"


def test_a_registered_model_loads_without_importing_what_the_checkpoint_lists(tmp_path):
    plugin = _plugin(tmp_path, TINY_MODEL)
    folder = _checkpoint(tmp_path / "c", **{"model.imports": f"[{plugin}]"})
    model, *_ = load_checkpoint(folder)
    assert not (tmp_path / "MARKER").exists()
    ref = TinyNet(2)
    load_weights(ref, folder)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k


def test_unknown_model_in_a_checkpoint_names_the_file(tmp_path):
    folder = _checkpoint(tmp_path / "c")
    meta = json.loads((folder / "checkpoint.json").read_text())
    meta["config"]["model"]["name"] = "nosuchnet"
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"c/checkpoint\.json: model 'nosuchnet' is not registered"):
        load_checkpoint(folder)


# --- NaN scores -----------------------------------------------------------------------------------

def test_non_finite_scores_name_the_source_and_a_video():
    check_finite_scores(np.zeros((2, 3, 4)), "ck", ["a", "b"])
    views = np.zeros((3, 2, 4))
    views[1, 0, 2] = np.inf
    with pytest.raises(NonFiniteScoresError, match=r"^ck: scores contain NaN or infinite values \(1 of 3 "
                                                   r"videos, e\.g\. b\)"):
        check_finite_scores(views, "ck", ["a", "b", "c"])


def test_predict_with_nan_weights_raises(tmp_path, helpers):
    model = TinyNet(2).eval()
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    model.input_spec = helpers.TINY_SPEC
    video = helpers.make_videos(tmp_path / "v", classes=1, per_class=1).records[0].path
    cfg = _cfg(tmp_path / "run")
    predictor = Predictor(model, cfg, ["a", "b"], torch.device("cpu"), "ck")
    with pytest.raises(NonFiniteScoresError, match=r"^ck: scores contain NaN"):
        predict_videos(predictor, [video])
    with torch.no_grad():
        model.head.bias.fill_(0.0)
    (result,) = predict_videos(predictor, [video])
    assert sum(p["probability"] for p in result["top"]) == pytest.approx(1.0, abs=1e-6)


# --- resume ---------------------------------------------------------------------------------------

def _train(cfg):
    torch.manual_seed(0)
    return train(cfg, model=TinyNet(2), train_dataset=TensorClips(8), progress=False)


def test_resume_without_a_checkpoint_is_an_error_and_resume_or_start_starts(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match=r"^cannot resume: .*pass --resume-or-start"):
        _train(_cfg(out, "resume=true"))
    assert existing_checkpoints(out / "checkpoints") == []
    result = _train(_cfg(out, "resume_or_start=true"))
    assert existing_checkpoints(out / "checkpoints") == ["last", "best"] and result.epochs_completed == 1
    again = _train(_cfg(out, "resume_or_start=true", "train.epochs=2"))  # now it resumes
    assert [r["epoch"] for r in again.history] == [1, 2]


@pytest.mark.parametrize("flag", ["resume=true", "resume_or_start=true", "resume=false"])
def test_a_best_checkpoint_is_never_overwritten_by_a_new_run(tmp_path, flag):
    out = tmp_path / "run"
    _train(_cfg(out))
    shutil.rmtree(out / "checkpoints" / "last")
    best = (out / "checkpoints" / "best" / "model.safetensors").read_bytes()
    error = ConfigError if flag == "resume=false" else CheckpointError
    with pytest.raises(error, match=r"already holds a run|checkpoints: best"):
        _train(_cfg(out, flag))
    assert (out / "checkpoints" / "best" / "model.safetensors").read_bytes() == best
    assert existing_checkpoints(out / "checkpoints") == ["best"]


def test_check_resumable_reads_the_description_and_needs_the_state(tmp_path):
    folder = _checkpoint(tmp_path / "c")
    assert check_resumable(folder) == folder
    (folder / "checkpoint.json").write_text('{"epo')
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: invalid JSON"):
        check_resumable(folder)
    weights_only = save_checkpoint(tmp_path / "w", TinyNet(2), {"config": {}, "class_names": []})
    with pytest.raises(CheckpointError, match=r"w/train_state\.pt: missing"):
        check_resumable(weights_only)


# --- configuration errors -------------------------------------------------------------------------

def test_unknown_model_and_format_are_config_errors_and_leave_no_run_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"^model\.name='nosuchnet': unknown model 'nosuchnet'"):
        build_model(_cfg(tmp_path / "a", "model.name=nosuchnet"), 2)
    cfg = _cfg(tmp_path / "b", "data.train.format=nosuchfmt", "data.train.root=x")
    with pytest.raises(ConfigError, match=r"^data\.train\.format='nosuchfmt' is not a dataset format"):
        load_index(cfg, "train")
    out = tmp_path / "new" / "run"
    with pytest.raises(ConfigError, match="model.name='nosuchnet'"):
        train(_cfg(out, "model.name=nosuchnet"), train_dataset=TensorClips(8), progress=False)
    assert not out.exists()
    kept = tmp_path / "kept"  # a folder that was there before is left alone
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError):
        train(_cfg(kept, "model.name=nosuchnet"), train_dataset=TensorClips(8), progress=False)
    assert (kept / "notes.txt").read_text() == "mine"


def test_glob_lists_in_overrides():
    assert parse_override("train.freeze=[*norm*, head.*, '*bn']").train.freeze == ["*norm*", "head.*", "*bn"]
    assert parse_override("train.freeze=[]").train.freeze == []
    assert parse_override("train.milestones=[2, 4]").train.milestones == [2, 4]  # YAML still reads numbers
    cfg = _cfg("out", "train.freeze=[*norm*]")
    assert cfg.train.freeze == ["*norm*"]
    with pytest.raises(ConfigError, match=r"^override 'train\.freeze=\*norm\*': .*quote a value starting"):
        parse_override("train.freeze=*norm*")
    with pytest.raises(ConfigError, match=r"train\.milestones\[0\]"):
        _cfg("out", "train.milestones=[*a]")


def test_fuse_inputs_damaged_or_non_finite_are_named(tmp_path):
    from deepvideo.engine.fusion import ScoreSet, load_scores, save_scores

    def scores(s):
        return ScoreSet(["a", "b"], np.array([0, 1]), s[:, None], s, ["x", "y"])

    s = np.eye(2, dtype=np.float32)
    good = save_scores(tmp_path / "good.npz", scores(s))
    assert load_scores(good).video_ids == ["a", "b"]
    s[1, 0] = np.nan
    nan = save_scores(tmp_path / "nan.npz", scores(s))
    with pytest.raises(ValueError, match=r"nan\.npz: scores contain NaN or infinite values"):
        load_scores(nan)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt: empty file \(0 bytes\)"):
        load_scores(tmp_path / "empty.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt: not a scores file"):
        load_scores(tmp_path / "list.pt")
