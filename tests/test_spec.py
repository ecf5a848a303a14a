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
