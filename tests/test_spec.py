import pytest

from deepvideo.spec import InputSpec


def test_stride_range_from_int_and_tuple():
    assert InputSpec(frame_stride=4).stride_range == (4, 4)
    assert InputSpec(frame_stride=(5, 15)).stride_range == (5, 15)


@pytest.mark.parametrize("kwargs, message", [
    ({"modalities": ("depth",)}, "modalities"),
    ({"modalities": ("flow",), "flow_stack": 0}, "flow_stack"),
    ({"frame_stride": (10, 5)}, "frame_stride"),
    ({"num_frames": 0}, "num_frames"),
])
def test_invalid_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputSpec(**kwargs)


@pytest.mark.parametrize("modalities, keys", [
    (("rgb",), ("rgb",)),
    (("flow",), ("flow",)),
    (("rgb", "flow"), ("rgb", "flow")),
    (("rgbdiff",), ("rgb",)),
    (("rgbdiff", "rgb"), ("rgb",)),
])
def test_batch_keys_name_what_the_model_reads(modalities, keys):
    spec = InputSpec(modalities=modalities, flow_stack=5 if "flow" in modalities else 0, num_frames=5)
    assert spec.batch_keys == keys
