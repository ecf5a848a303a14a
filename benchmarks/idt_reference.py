"""Published and release-implied figures for the trajectory statistics of ``bench_idt.py``.

Each entry names the statistic of :func:`deepvideo.features.trajstats.summarize` it is compared
with, the figure as its source states it, the range read from it (``None``: no figure), the
source and the resolution the source worked at. Only figures read in a source are listed; for
the statistics with no published figure the entry says so and no verdict is given.

Searched for figures (stored copies of public pages, documentation, code and issues; of the
papers only openings, abstracts and first pages could be read): the three papers (CVPR 2011
"Action recognition by dense trajectories", IJCV 2013 "Dense trajectories and motion boundary
descriptors", ICCV 2013 "Action recognition with improved trajectories") and the IJCV 2016
follow-up; the LEAR pages of the DenseTrack and DenseTrackStab releases (defaults L = 15,
W = 5, N = 32, 2x2x3 cells); public copies of the release source (removal rules, constants,
pyramid); follow-ups on efficiency, sampling and camera motion (Kantorov & Laptev 2014,
Uijlings et al. 2014, Peng et al. 2016, Sapienza et al. 2014, Jain et al. 2016, Murthy &
Goecke 2013, Wang et al. TDD 2015); notes, READMEs and notebooks of public code running the
release. None stated kept trajectories per frame or per video, a mean length, or a static or
camera-motion share at a stated resolution.
"""

from __future__ import annotations

NONE_FOUND = ("no published figure found (the sources searched are listed in "
              "benchmarks/idt_reference.py)")

REFERENCES = [
    {"key": "active_per_frame", "statistic": "active points per frame (tracked, kept or not)",
     "figure": "\"each clip can have thousands of trajectories active at any particular frame\"",
     "range": (1000, 10000),
     "source": "M. C. Hughes, \"Dense Trajectories for Action Recognition\", blog post, 30 Aug 2012, "
               "http://www.michaelchughes.com/blog/2012/08/dense-trajectories-for-action-recognition/ "
               "(the authors' DenseTrack code, default settings, Olympic Sports; a user's report, "
               "not a paper; order of magnitude only)",
     "resolution": "not stated"},
    {"key": "active_per_grid_cell", "statistic": "active points per sampling cell",
     "figure": "at most about 1: dense sampling puts one new point in each empty W x W cell "
               "(W = 5) of every scale (1/sqrt 2 apart, short side >= 32 px)",
     "range": (0.0, 1.0),
     "source": "implied by the release's sampling (DenseSample and InitPry of DenseTrackStab, read "
               "in public copies of the release: scale_num = 8, min_distance = 5; W = 5 is the default on "
               "https://lear.inrialpes.fr/people/wang/improved_trajectories.html), not a measured figure",
     "resolution": "any (per video)"},
    {"key": "kept_per_ending_frame", "statistic": "kept trajectories per frame (features per video / frames)",
     "figure": NONE_FOUND, "range": None, "source": "-", "resolution": "-"},
    {"key": "mean_length_px", "statistic": "mean trajectory length (px, original frame)",
     "figure": NONE_FOUND, "range": None, "source": "-", "resolution": "-"},
    {"key": "static_share", "statistic": "share of finished trajectories removed as static",
     "figure": NONE_FOUND, "range": None, "source": "-", "resolution": "-"},
    {"key": "camera_share", "statistic": "share removed as camera motion (improved only)",
     "figure": "none as a number: ICCV 2013 / IJCV 2016 Fig. 1 show the trajectories removed due to "
               "camera motion as images only; " + NONE_FOUND,
     "range": None, "source": "Wang & Schmid, ICCV 2013, Fig. 1 caption", "resolution": "-"},
]

COLUMNS = ["statistic", "ours", "published / implied figure", "range", "source",
           "resolution (ours / theirs)", "within"]


def verdict(value: float, rng: tuple[float, float] | None) -> str:
    """``within`` / ``outside`` the closed range, or ``no figure`` when there is none."""
    if rng is None:
        return "no figure"
    return "within" if rng[0] <= value <= rng[1] else "outside"


def _fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"


def reference_table(stats: dict, ours_resolution: str) -> tuple[list[list], dict]:
    """Table rows for :data:`COLUMNS` and ``{verdict_<key>: verdict}`` for the summary."""
    rows, verdicts = [], {}
    for ref in REFERENCES:
        value = stats[ref["key"]]
        v = verdict(value, ref["range"])
        verdicts[f"verdict_{ref['key']}"] = v
        rng = "-" if ref["range"] is None else f"{ref['range'][0]:g} - {ref['range'][1]:g}"
        rows.append([ref["statistic"], _fmt(value), ref["figure"], rng, ref["source"],
                     f"{ours_resolution} / {ref['resolution']}", v])
    with_figure = sum(ref["range"] is not None for ref in REFERENCES)
    verdicts["statistics_with_a_figure"] = f"{with_figure} of {len(REFERENCES)}"
    return rows, verdicts
