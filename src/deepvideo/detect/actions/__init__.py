"""Spatio-temporal action detection: who does what, where and when.

:mod:`.ava` (the AVA CSV / action list / proposal formats), :mod:`.framebox` (UCF101-24 and
J-HMDB per-frame tube annotations as JSON), :mod:`.sampling` (keyframe-centred clips),
:mod:`.synth` (a synthetic AVA-format set), :mod:`.dataset` (keyframe samples for training),
:mod:`.model` (a 3D backbone with SlowFast's RoI head, and baselines), :mod:`.evaluate`
(frame-mAP), :mod:`.tubes` (greedy tube linking, video-mAP), :mod:`.predict` (a video ->
per-person actions over time).
"""
