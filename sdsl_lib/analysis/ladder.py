"""Compatibility: the names of the former one-file ``ladder`` module, now split by topic.

New code imports from the topic modules (:mod:`~sdsl_lib.analysis.tables`, ``stats``,
``verdicts``, ``results``, ``pretraining``, ``acceptance``, ``throughput``, ``chain``, ``latency``);
the cost-model laws moved to :mod:`sdsl_lib.laws.wallclock`.
"""

from sdsl_lib.analysis.acceptance import (  # noqa: F401
    ALPHA_METHODS,
    LadderPlane,
    alpha_disagreement,
    alpha_three_ways,
    fit_ladder_plane,
    iid_check,
    per_target_forms,
    position_acceptance,
    tar_vs_eq12,
)
from sdsl_lib.analysis.chain import (  # noqa: F401
    ChainPrediction,
    latency_optimal_draft,
    nstar_draws,
    nstar_grid_for,
    predict_chain,
    predicted_nstar,
)
from sdsl_lib.analysis.latency import latency_table, paired_time_difference  # noqa: F401
from sdsl_lib.analysis.pretraining import fit_ladder_law, law_comparison, law_multistart_spread  # noqa: F401
from sdsl_lib.analysis.stats import mean_ci  # noqa: F401
from sdsl_lib.analysis.tables import FILES, MeasuredData, json_safe, load_measured, measured_dir  # noqa: F401
from sdsl_lib.analysis.throughput import (  # noqa: F401
    best_gamma_by_pair,
    bootstrap_optimal_draft,
    flop_gain_measured,
    measured_optimal_draft,
    one_token_latency,
    optimal_gamma_table,
    speedup_predictions,
    step_cost_model,
    verification_cost_curve,
)
from sdsl_lib.laws.wallclock import wallclock_speedup  # noqa: F401
