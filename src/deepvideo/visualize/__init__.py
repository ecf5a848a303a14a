"""What spatiotemporal networks learned: activation maximisation for appearance and motion
(Feichtenhofer et al., CVPR 2018; thesis ch. 6), Grad-CAM for video, occlusion sensitivity,
first-layer filters and the top clips of a unit.

Modules: :mod:`.maximize` (with :mod:`.regularizers`, :mod:`.receptive`, :mod:`.stats`),
:mod:`.display` and :mod:`.save` (pictures, videos, reports), :mod:`.gradcam`,
:mod:`.occlusion`, :mod:`.filters`, :mod:`.topk`, :mod:`.motion` (what a flow input shows),
:mod:`.hooks` (layers by module path). The command line is ``deepvideo visualize``.
"""
