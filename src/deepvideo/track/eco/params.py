"""ECO-HC parameters (Danelljan, Bhat, Khan, Felsberg, "ECO: Efficient Convolution Operators
for Tracking", CVPR 2017).

The paper defines the factorized convolution (projection ``D -> C`` learned in the first frame
by Gauss-Newton and conjugate gradient), the generative sample space and the sparse update
every N_S = 6 frames. The numbers are those of the authors' ECO-HC settings file
``runfiles/testing_ECO_HC.m`` (martin-danelljan/ECO, version 2.0, commit e260162 of June 2017;
pyECO's ``otb_hc_config.py`` carries the same values): search area scale 4, image sample area
150^2..200^2, HOG cell 6 compressed to 10 channels, CN cell 4 compressed to 3, output sigma
factor 1/16, learning rate 0.009, nSamples 30, lowest-prior replacement, train gap 5, sparse
updates after frame 10, 5 CG iterations, 10 Gauss-Newton iterations with 10 x 15 CG
iterations in total in the first frame, Polak-Ribiere CG with forgetting rate 50,
preconditioner weights 0.75 (data) / 0.25 (regularisation), projection regularisation 1e-7,
regularisation window min 1e-4, edge 10e-3, power 2, sparsity threshold 0.05, bicubic kernel
a = -0.75 centred at the samples and no extra windowing, 5 Newton iterations in detection.
(The first release's files, ``OTB_HC_settings.m`` and the April 2017 ``testing_ECO_HC.m``,
differ in a few values: learning rate 0.007, window edge 4e-3, 10 x 20 CG iterations,
projection regularisation 1e-6.)

Scale: the MATLAB ECO-HC settings estimate scale with a separate fDSST filter (17 scales of
step 1.02, target-sized HOG samples of at most 32 x 16 pixels, label sigma factor 1/16 over
33 interpolated scales, learning rate 0.025, lambda 1e-2); with ``use_scale_filter`` this
implementation uses the DSST filter of :mod:`deepvideo.track.scale_filter` with those numbers
(17 scales, without fDSST's PCA compression and 17 -> 33 response interpolation; the label's
width, 33/16 interpolated steps, is 17/16 steps of the 17-scale grid). Without it, the
translation filter runs at the ``number_of_scales = 5`` scales ``1.02 ** [-2..2]``, as the same
authors' PyTorch ECO (pytracking, ``parameter/eco/default.py``) does.

The preconditioner of the projection matrix in the first frame is the exact diagonal of its
block of the normal equations, so ECO's ``precond_proj_param`` has no use here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EcoParams:
    """Every number of ECO-HC in one place (see the module docstring for the sources)."""

    # image sample
    search_area_scale: float = 4.0
    min_image_sample_size: float = 150.0 ** 2
    max_image_sample_size: float = 200.0 ** 2
    # features (HOG cell 6 -> 10 channels, CN cell 4 -> 3 channels)
    hog_cell_size: int = 6
    hog_compressed_dim: int = 10
    cn_cell_size: int = 4
    cn_compressed_dim: int = 3
    # learning
    output_sigma_factor: float = 1.0 / 16.0
    learning_rate: float = 0.009
    num_samples: int = 30
    train_gap: int = 5                      # N_S = train_gap + 1 = 6
    skip_after_frame: int = 10
    # factorized convolution
    projection_reg: float = 1e-7
    # conjugate gradient
    cg_iter: int = 5
    init_gn_iter: int = 10
    init_cg_iter: int = 10 * 15
    cg_forgetting_rate: float = 50.0
    precond_data_param: float = 0.75
    precond_reg_param: float = 0.25
    precond_proj_param: float = 40.0
    # spatial regularisation window
    reg_window_min: float = 1e-4
    reg_window_edge: float = 10e-3
    reg_window_power: int = 2
    reg_sparsity_threshold: float = 0.05
    # interpolation kernel
    interp_bicubic_a: float = -0.75
    interp_centering: bool = True
    interp_windowing: bool = False
    # detection
    newton_iterations: int = 5
    # scale: a separate scale filter (ECO-HC's settings) or a search with the translation filter
    use_scale_filter: bool = True
    number_of_scales_filter: int = 17
    number_of_interp_scales: int = 33
    scale_step_filter: float = 1.02
    scale_sigma_factor: float = 1.0 / 16.0
    scale_learning_rate: float = 0.025
    scale_lambda: float = 1e-2
    scale_model_max_area: float = 32 * 16
    number_of_scales: int = 5
    scale_step: float = 1.02

    @property
    def scale_label_sigma(self) -> float:
        """The scale filter's label sigma in steps of its ``number_of_scales_filter`` grid."""
        interp_steps = self.number_of_interp_scales * self.scale_sigma_factor
        return interp_steps * self.number_of_scales_filter / self.number_of_interp_scales

    @property
    def update_interval(self) -> int:
        """N_S: the filter is optimised every this many frames."""
        return self.train_gap + 1
