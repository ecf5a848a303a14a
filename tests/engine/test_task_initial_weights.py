"""Every task that builds its own network loads ``model.pretrained`` / ``model.init_from``
(:meth:`deepvideo.engine.task.Task.with_initial_weights`): the keys are never silently ignored."""

from __future__ import annotations

import pytest
import torch

from deepvideo.engine.checkpoint import save_checkpoint
from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.task import create_task


def siamfc_task(*overrides: str):
    return create_task(load_config(overrides=["task=siamfc", "model.name=siamfc", *overrides]))


def test_siamfc_task_loads_init_from_into_the_network(tmp_path):
    torch.manual_seed(0)
    source = siamfc_task().build_model()
    save_checkpoint(tmp_path / "ck", source, {"config": {}})
    torch.manual_seed(1)
    fresh = siamfc_task().build_model()
    assert not all(torch.equal(v, source.state_dict()[k]) for k, v in fresh.state_dict().items())
    loaded = siamfc_task(f"model.init_from=[{{checkpoint: {tmp_path / 'ck'}}}]").build_model()
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize("task,model", [("siamfc", "siamfc"), ("atom", "atom"), ("dimp", "dimp")])
def test_a_missing_pretrained_checkpoint_is_an_error_naming_the_key(tmp_path, task, model):
    cfg = load_config(overrides=[f"task={task}", f"model.name={model}",
                                 f"model.pretrained={tmp_path / 'missing'}"])
    with pytest.raises(ConfigError, match=r"model\.pretrained: .*missing"):
        create_task(cfg).build_model()
