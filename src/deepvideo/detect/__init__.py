"""Detection in video: object detection and tracking (Detect & Track) and action detection.

:mod:`deepvideo.detect.ap` holds the PASCAL VOC-style average precision that both the
ImageNet VID and the AVA protocols report.
"""
