"""Hardening sweep (issue 12): bad inputs through the real ``deepvideo`` command, one subprocess each.

Every case asserts the exit code, one ``error:`` line naming the file or key at fault and no
traceback; the hostile cases assert that their marker file (what their code would create) does
not exist. One tiny run (``demo_spatial_cnn`` at width 4 on four 6-frame videos) is trained
in-process once for the module; each case damages a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

MODEL = "demo_spatial_cnn"
EVIL_PLUGIN = '''
from pathlib import Path

from deepvideo.models.demo_nets import demo_spatial_cnn
from deepvideo.models.registry import register_model
from deepvideo.spec import InputSpec

Path(__file__).with_name("MARKER").touch()  # what a hostile plugin would do instead
register_model("evil_net", demo_spatial_cnn, InputSpec(modalities=("rgb",), num_frames=1, crop_size=16))
'''


class Payload:
    """Unpickling this (a plain ``torch.load``) creates ``marker``: the way a pickle runs code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _recipe(world: Path, out: Path, name: str = "recipe.yaml", **model) -> Path:
    cfg = {"name": "tiny", "output_dir": str(out), "seed": 0, "device": "cpu",
           "model": {"name": MODEL, "kwargs": {"width": 4}, "spec": {"crop_size": 16}, **model},
           "data": {"train": {"format": "folder", "root": str(world / "videos")}, "num_workers": 0,
                    "short_side": 18},
           "train": {"epochs": 1, "batch_size": 2, "lr": 0.01, "amp": "none", "log_every": 1,
                     "monitor": "train_loss"}}
    path = out.parent / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """``videos/c{0,1}/v{0,1}.mp4`` and ``run/`` trained for one epoch from ``recipe.yaml``."""
    from deepvideo.engine.loop import main_train
    from deepvideo.io import write_video

    root = tmp_path_factory.mktemp("sweep")
    for c in range(2):
        for i in range(2):
            frames = np.zeros((6, 24, 24, 3), np.uint8)
            frames[..., c] = 200
            write_video(root / "videos" / f"c{c}" / f"v{i}.mp4", frames, fps=10, gop=4)
    main_train(_recipe(root, root / "run"), [], progress=False)
    return root


def _copy_run(world: Path, tmp: Path) -> tuple[Path, Path]:
    """A copy of the trained run and a recipe whose output_dir is that copy."""
    run = tmp / "run"
    shutil.copytree(world / "run", run)
    return run, _recipe(world, run)


def _cut(path: Path, keep: int | None = None, data: bytes | None = None) -> None:
    """Truncate ``path`` to ``keep`` bytes (default: half), or replace its content by ``data``."""
    content = path.read_bytes()
    path.write_bytes(data if data is not None else content[: len(content) // 2 if keep is None else keep])


def _deepvideo(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "deepvideo", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _nan_weights(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(folder / "model.safetensors"))


def _hostile(world: Path, tmp: Path) -> Path:
    """A run whose checkpoint.json names model ``evil_net`` and lists ``evil.py`` (it would touch MARKER)."""
    run, _ = _copy_run(world, tmp)
    (tmp / "evil.py").write_text(EVIL_PLUGIN)
    for name in ("best", "last"):
        meta_file = run / "checkpoints" / name / "checkpoint.json"
        meta = json.loads(meta_file.read_text())
        meta["config"]["model"].update(name="evil_net", imports=[str(tmp / "evil.py")], kwargs={"width": 4})
        meta_file.write_text(json.dumps(meta))
    return run


def _scores_file(tmp: Path) -> Path:
    from deepvideo.engine.fusion import ScoreSet, save_scores

    s = np.eye(2, dtype=np.float32)
    return save_scores(tmp / "scores.npz", ScoreSet(["a", "b"], np.array([0, 1]), s[:, None], s, ["x", "y"]))


# Each case: tmp, world -> (argv, exit code, text the one error line must contain).
def case_hostile_predict(world, tmp):
    run = _hostile(world, tmp)
    return ["predict", run, world / "videos/c0/v0.mp4"], 1, \
        "checkpoint.json: model 'evil_net' is not registered"


def case_hostile_test(world, tmp):
    return ["test", _hostile(world, tmp), "--subset", "train"], 1, "--allow-imports"


def case_payload_convert(world, tmp):
    torch.save({"conv.weight": torch.zeros(1), "x": Payload(tmp / "MARKER")}, tmp / "payload.pth")
    return ["convert", tmp / "payload.pth", tmp / "out.safetensors", "--model", MODEL], 1, \
        "payload.pth: cannot be read as weights: it holds Python objects other than tensors"


def case_payload_train_state(world, tmp):
    run, recipe = _copy_run(world, tmp)
    torch.save({"optimizer": Payload(tmp / "MARKER")}, run / "checkpoints/last/train_state.pt")
    return ["train", recipe, "--resume"], 1, "last/train_state.pt: cannot be read as weights"


def case_payload_fuse(world, tmp):
    torch.save({"scores": Payload(tmp / "MARKER")}, tmp / "payload.pt")
    return ["fuse", tmp / "payload.pt"], 1, "payload.pt: cannot be read as weights"


def case_payload_pretrained(world, tmp):
    run, _ = _copy_run(world, tmp)
    torch.save({"w": Payload(tmp / "MARKER")}, run / "checkpoints/best/model.safetensors")
    recipe = _recipe(world, tmp / "new", "new.yaml", pretrained=str(run / "checkpoints/best"))
    return ["train", recipe], 2, "model.pretrained: " + str(run / "checkpoints/best/model.safetensors")


def case_test_truncated_weights(world, tmp):
    run, _ = _copy_run(world, tmp)
    _cut(run / "checkpoints/best/model.safetensors")
    return ["test", run, "--subset", "train"], 1, \
        "best/model.safetensors: damaged safetensors file (truncated?)"


def case_predict_empty_weights(world, tmp):
    run, _ = _copy_run(world, tmp)
    _cut(run / "checkpoints/best/model.safetensors", keep=0)
    return ["predict", run, world / "videos/c0/v0.mp4"], 1, "best/model.safetensors: empty file (0 bytes)"


def case_predict_random_weights(world, tmp):
    run, _ = _copy_run(world, tmp)
    _cut(run / "checkpoints/best/model.safetensors", data=np.random.default_rng(0).bytes(4096))
    return ["predict", run, world / "videos/c0/v0.mp4"], 1, "best/model.safetensors: damaged safetensors file"


def case_resume_truncated_state(world, tmp):
    run, recipe = _copy_run(world, tmp)
    _cut(run / "checkpoints/last/train_state.pt")
    return ["train", recipe, "--resume"], 1, "last/train_state.pt: damaged PyTorch file (truncated?"


def case_resume_empty_state(world, tmp):  # torch.load raised EOFError: the CLI printed a bare "Aborted."
    run, recipe = _copy_run(world, tmp)
    _cut(run / "checkpoints/last/train_state.pt", keep=0)
    return ["train", recipe, "--resume"], 1, "last/train_state.pt: empty file (0 bytes)"


def case_resume_truncated_meta(world, tmp):
    run, recipe = _copy_run(world, tmp)
    _cut(run / "checkpoints/last/checkpoint.json", keep=40)
    return ["train", recipe, "--resume"], 1, "last/checkpoint.json: invalid JSON, the file is damaged"


def case_test_truncated_meta(world, tmp):
    run, _ = _copy_run(world, tmp)
    _cut(run / "checkpoints/best/checkpoint.json", keep=40)
    return ["test", run, "--subset", "train"], 1, "best/checkpoint.json: invalid JSON"


def case_convert_truncated(world, tmp):
    torch.save({"w": torch.zeros(64)}, tmp / "w.pth")
    _cut(tmp / "w.pth")
    return ["convert", tmp / "w.pth", tmp / "out.safetensors", "--model", MODEL], 1, \
        "w.pth: damaged PyTorch file (truncated?"


def case_fuse_truncated(world, tmp):
    _cut(_scores_file(tmp))
    return ["fuse", tmp / "scores.npz", tmp / "scores.npz"], 1, "scores.npz: not a readable scores file"


def case_predict_nan(world, tmp):
    run, _ = _copy_run(world, tmp)
    _nan_weights(run / "checkpoints/best")
    return ["predict", run, world / "videos/c0/v0.mp4", "--json"], 1, "scores contain NaN or infinite"


def case_test_nan(world, tmp):
    run, _ = _copy_run(world, tmp)
    _nan_weights(run / "checkpoints/best")
    return ["test", run, "--subset", "train"], 1, "checkpoints/best: scores contain NaN or infinite"


def case_resume_nothing(world, tmp):
    return ["train", _recipe(world, tmp / "new"), "--resume"], 1, "pass --resume-or-start"


def case_unknown_model(world, tmp):
    return ["train", _recipe(world, tmp / "new"), "model.name=nosuchnet"], 2, \
        "model.name='nosuchnet': unknown model"


def case_unknown_format(world, tmp):
    return ["train", _recipe(world, tmp / "new"), "data.train.format=nosuchfmt"], 2, \
        "data.train.format='nosuchfmt' is not a dataset format"


def case_unknown_dataset_option(world, tmp):
    return ["train", _recipe(world, tmp / "new"), "data.train.rooot=x"], 2, \
        "data.train: format 'folder' got unknown option(s) ['rooot']"


def case_freeze_matches_nothing(world, tmp):
    return ["train", _recipe(world, tmp / "new"), "train.freeze=[*nosuchlayer*]"], 2, \
        "train.freeze pattern '*nosuchlayer*' matches no parameter"


CASES = {name[5:]: fn for name, fn in dict(globals()).items() if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_error_line(world, tmp_path, name):
    argv, code, text = CASES[name](world, tmp_path)
    proc = _deepvideo(*argv, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "Aborted" not in output, output
    assert proc.returncode == code, output
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and text in errors[0], output
    assert proc.stderr.rstrip().endswith(errors[0]), output  # the last line (after progress lines)
    assert not (tmp_path / "MARKER").exists()  # no hostile code ran
    assert not (tmp_path / "new").exists()  # a run that could not start leaves no folder
    if name == "predict_nan":
        assert proc.stdout == ""  # no JSON with NaN in it


def test_hostile_checkpoint_imports_with_the_users_opt_in(world, tmp_path):
    run = _hostile(world, tmp_path)
    proc = _deepvideo("predict", run, world / "videos/c0/v0.mp4", "--allow-imports", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "MARKER").exists()  # the plugin ran because the user allowed it
    top = json.loads(proc.stdout)["predictions"][0]["top"]
    assert sorted(p["class"] for p in top) == ["c0", "c1"]
    assert sum(p["probability"] for p in top) == pytest.approx(1.0, abs=1e-5)


def test_resume_keeps_a_best_checkpoint_without_last(world, tmp_path):
    run, recipe = _copy_run(world, tmp_path)
    shutil.rmtree(run / "checkpoints/last")
    before = (run / "checkpoints/best/model.safetensors").read_bytes()
    for flag in ("--resume", "--resume-or-start"):
        proc = _deepvideo("train", recipe, flag, cwd=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "cannot resume: " in proc.stderr and "checkpoints: best" in proc.stderr
    assert (run / "checkpoints/best/model.safetensors").read_bytes() == before
    assert not (run / "checkpoints/last").exists()


def test_resume_or_start_starts_a_new_run_and_globs_are_list_items(world, tmp_path):
    recipe = _recipe(world, tmp_path / "new")
    proc = _deepvideo("train", recipe, "--resume-or-start", "train.freeze=[*features.0*, *.1.bias]",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "new/checkpoints/last/model.safetensors").is_file()
    log = (tmp_path / "new/train.log").read_text()
    assert "frozen 5 parameter tensors" in log  # features.0.* (3) and the other two BN biases


def test_payloads_are_live(tmp_path):
    """The payload really runs code under a plain torch.load: the refusals above are meaningful."""
    torch.save({"x": Payload(tmp_path / "MARKER")}, tmp_path / "payload.pt")
    torch.load(tmp_path / "payload.pt", weights_only=False)
    assert (tmp_path / "MARKER").exists()


def test_library_readers_refuse_payloads(tmp_path):
    """The library entry points behind the commands: none unpickles the payload."""
    from deepvideo.engine.fusion import load_scores
    from deepvideo.models.convert import WeightsFileError, load_model

    torch.save({"head.fc.weight": Payload(tmp_path / "MARKER")}, tmp_path / "payload.pyth")
    with pytest.raises(WeightsFileError, match=r"payload\.pyth: cannot be read as weights.*io\.open"):
        load_model(MODEL, tmp_path / "payload.pyth")
    objects = np.array([Payload(tmp_path / "MARKER")], dtype=object)  # np.savez pickles object arrays
    np.savez(tmp_path / "scores.npz", video_ids=objects, labels=np.zeros(1), view_logits=np.zeros((1, 1, 2)),
             scores=np.zeros((1, 2)), class_names=np.array(["x", "y"]))
    with pytest.raises(ValueError, match=r"scores\.npz: not a readable scores file.*allow_pickle=False"):
        load_scores(tmp_path / "scores.npz")
    assert not (tmp_path / "MARKER").exists()
