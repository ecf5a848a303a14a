"""One module per tracker; each registers itself with :func:`deepvideo.track.register_tracker`."""
