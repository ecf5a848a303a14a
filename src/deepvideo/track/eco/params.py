"""ECO-HC parameters (Danelljan, Bhat, Khan, Felsberg, "ECO: Efficient Convolution Operators
for Tracking", CVPR 2017).

Values come from the paper (section 4: learning rate 0.009, L = 30 components for ECO-HC,
model update every N_S = 6 frames, 5 CG iterations per update, 10 Gauss-Newton iterations in
the first frame, HOG compressed to 10 and colour names to 3 channels) and the authors' public
ECO-HC settings file ``runfiles/testing_ECO_HC.m`` (martin-danelljan/ECO): search area scale 4,
image sample area 150^2..200^2, HOG cell 6, CN cell 4, output sigma factor 1/16, train gap 5,
sparse updates after frame 10, 10 x 15 CG iterations in the first frame, CG forgetting rate 50,
preconditioner weights 0.75 / 0.25 / 40, projection regularisation 1e-7, regularisation window
(min 1e-4, edge 10e-3, power 2, sparsity threshold 0.05), bicubic kernel a = -0.75 centred at
the samples without extra windowing, 5 Newton iterations in detection.

Scale: the MATLAB ECO-HC settings estimate scale with an fDSST filter; the same authors'
PyTorch ECO (pytracking, ``parameter/eco/default.py``) runs the translation filter at the
scales ``1.02 ** [-2, -1, 0, 1, 2]``. This implementation uses that 5-scale search.
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
    number_of_scales: int = 5
    scale_step: float = 1.02

    @property
    def update_interval(self) -> int:
        """N_S: the filter is optimised every this many frames."""
        return self.train_gap + 1
