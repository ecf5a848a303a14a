"""deepvideo.engine: training, evaluation and their run files.

- :mod:`~deepvideo.engine.loop`: ``train``, ``main_train``, ``RunResult``, ``NonFiniteLossError``
  (one loop for every task);
- :mod:`~deepvideo.engine.task`: the ``Task`` protocol and ``register_task``;
  :mod:`~deepvideo.engine.tasks.recognition`: the default task;
- :mod:`~deepvideo.engine.build`: config -> model, datasets (``dataset_kwargs``), loaders;
  ``load_checkpoint``; loud ``model.pretrained`` / ``model.init_from`` loading;
- :mod:`~deepvideo.engine.scoring`: batch -> scores, shared by validation, test and predict;
- :mod:`~deepvideo.engine.losses`, :mod:`~deepvideo.engine.optim`, :mod:`~deepvideo.engine.runlog`,
  :mod:`~deepvideo.engine.checkpoint`, :mod:`~deepvideo.engine.distributed`;
- :mod:`~deepvideo.engine.evaluate` (``evaluate_checkpoint``, ``predict_videos``),
  :mod:`~deepvideo.engine.splits` (3-split protocol), :mod:`~deepvideo.engine.fusion`,
  :mod:`~deepvideo.engine.metrics`, :mod:`~deepvideo.engine.report`.
"""
