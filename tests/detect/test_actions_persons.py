"""Person boxes for action detection from an object detector (``--person-detector``)."""

from types import SimpleNamespace

import numpy as np
import torch

from deepvideo.detect.actions.predict import person_boxes
from deepvideo.io.writer import write_video


class FixedDetector:
    """An object detector with fixed output: a person (label 2) at (8, 4, 24, 20) with score
    0.9, one at score 0.3 and a box of another class (label 1); records the frames it saw."""

    def __init__(self):
        self.frames = []

    def eval(self):
        return self

    def detect(self, image):
        self.frames.append(image)
        return [SimpleNamespace(boxes=torch.tensor([[8.0, 4, 24, 20], [0, 0, 8, 8], [10, 10, 40, 60]]),
                                scores=torch.tensor([0.9, 0.3, 0.95]), labels=torch.tensor([2, 2, 1]))]


def test_person_boxes_keeps_the_person_class_above_the_score_normalised(tmp_path):
    frames = np.zeros((12, 24, 32, 3), np.uint8)  # 3 s at 4 fps, 32 wide, 24 high
    video = write_video(tmp_path / "v.mp4", frames, fps=4)
    detector = FixedDetector()
    boxes = person_boxes(detector, video, label=2, min_score=0.5)
    assert sorted(boxes) == [0, 1, 2]  # one keyframe per second
    for value in boxes.values():
        np.testing.assert_allclose(value, [[8 / 32, 4 / 24, 24 / 32, 20 / 24, 0.9]], rtol=1e-6)
    assert detector.frames[0].shape == (1, 3, 24, 32) and float(detector.frames[0].max()) <= 1.0
    assert all(len(v) == 2 for v in person_boxes(detector, video, label=2, min_score=0.2).values())
