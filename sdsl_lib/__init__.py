"""sdsl_lib: the laws and fits of *Speculative Decoding Scaling Laws* (arXiv:2603.11053), plus the
tools that train, run and time real draft/target models to test them.

Laws (pure, vectorised, numpy in and out) are re-exported here; measurement code (``decoding``,
``measure``...) is imported from its own module because it needs torch.
"""

from sdsl_lib.laws.acceptance import (
    acceptance_from_probs,
    alpha_from_tar,
    alpha_plane,
    fit_alpha_plane,
    fit_alpha_vs_draft_ppl,
    tar_model,
)
from sdsl_lib.laws.constants import (
    BESIROGLU_2024,
    HOFFMANN_2022,
    TABLE3_PLANE,
    TABLE7_GRID,
    TABLE7_GRID_AS_PRINTED,
    TABLE8_NSTAR_FULL,
    TABLE9_NSTAR_LINEAR,
    AlphaPlane,
    ChinchillaLaw,
    NstarFullLaw,
    NstarLinearLaw,
    Table7Grid,
)
from sdsl_lib.laws.optimal import (
    fit_nstar_full,
    fit_nstar_linear,
    nstar_grid,
    optimal_draft_size,
    predicted_alpha,
    predicted_throughput,
)
from sdsl_lib.laws.pretraining import fit_chinchilla, loss, perplexity
from sdsl_lib.laws.speculation import (
    expected_accepted_drafts,
    expected_tokens_per_iteration,
    optimal_lookahead,
    optimal_throughput,
    speculation_pays,
    speedup,
    throughput_per_flop,
)

__version__ = "0.1.0"

__all__ = [
    "acceptance_from_probs",
    "alpha_from_tar",
    "alpha_plane",
    "fit_alpha_plane",
    "fit_alpha_vs_draft_ppl",
    "tar_model",
    "BESIROGLU_2024",
    "HOFFMANN_2022",
    "TABLE3_PLANE",
    "TABLE7_GRID",
    "TABLE7_GRID_AS_PRINTED",
    "TABLE8_NSTAR_FULL",
    "TABLE9_NSTAR_LINEAR",
    "AlphaPlane",
    "ChinchillaLaw",
    "NstarFullLaw",
    "NstarLinearLaw",
    "Table7Grid",
    "fit_nstar_full",
    "fit_nstar_linear",
    "nstar_grid",
    "optimal_draft_size",
    "predicted_alpha",
    "predicted_throughput",
    "fit_chinchilla",
    "loss",
    "perplexity",
    "expected_accepted_drafts",
    "expected_tokens_per_iteration",
    "optimal_lookahead",
    "optimal_throughput",
    "speculation_pays",
    "speedup",
    "throughput_per_flop",
]
