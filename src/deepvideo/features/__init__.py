"""Hand-crafted video features: (improved) dense trajectories with HOG/HOF/MBH, their
encodings (PCA, GMM, Fisher vectors, bag of words), trajectory-pooled deep descriptors.

:mod:`.trajectories` tracks and describes, :mod:`.histograms` holds the descriptor maths,
:mod:`.sampling` the dense grid, :mod:`.camera` the homography of improved trajectories,
:mod:`.trajstats` the run statistics counted as the release counts,
:mod:`.encoding` PCA/GMM/Fisher/BoW, :mod:`.store` the per-video npz files and the reader of
the authors' binary's text output, :mod:`.extract` the dataset driver.
"""

from deepvideo.features.trajectories import (
    DESCRIPTORS,
    INFO_FIELDS,
    DenseTrajectoryExtractor,
    Trajectories,
    TrajectoryParams,
    extract_trajectories,
)

__all__ = ["DESCRIPTORS", "INFO_FIELDS", "DenseTrajectoryExtractor", "Trajectories", "TrajectoryParams",
           "extract_trajectories"]
