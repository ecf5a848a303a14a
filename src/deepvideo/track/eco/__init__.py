"""The pieces of ECO (Danelljan et al., CVPR 2017) and C-COT (Danelljan et al., ECCV 2016):
continuous Fourier-domain operations (:mod:`.fourier`), the generative sample space
(:mod:`.sample_space`), filter learning by Gauss-Newton and conjugate gradient
(:mod:`.optimize`), and the ECO-HC parameters (:mod:`.params`). The tracker itself is
:mod:`deepvideo.track.trackers.eco`."""
