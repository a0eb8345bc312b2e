"""Evaluation methods: did services improve where CLM worked, and did HIV outcomes follow?

Every method takes the canonical tables (or tidy frames with column-name parameters defaulting
to the canonical names) and returns a result with ``.effects`` (estimate, CI, p-value),
``.diagnostics``, ``.summary()`` (a DataFrame) and ``.plot()`` (a matplotlib Figure). Data a
method cannot handle raise :class:`EvaluationError` with the reason.

This subpackage imports statsmodels; ``import clm_research`` does not import it.
"""

from __future__ import annotations

from clm_research.evaluation._results import (
    Effect,
    EvaluationError,
    EvaluationResult,
    results_frame,
)
from clm_research.evaluation.accountability import (
    FUNNEL_STAGES,
    CoxResult,
    FunnelResult,
    SurvivalResult,
    issue_funnel,
    resolution_cox,
    resolution_times,
    time_to_resolution,
)
from clm_research.evaluation.chain import (
    STRENGTHS,
    ChainResult,
    DoseResponseResult,
    LinkResult,
    chain_alt_text,
    chain_analysis,
    chain_paragraph,
    dose_response,
    facility_round_values,
    link_effect,
    mediated_share,
    plot_chain,
)
from clm_research.evaluation.client import ClientResult, add_clm_exposure, client_gee, client_mixed
from clm_research.evaluation.community_led import (
    CRITERIA,
    ROLES,
    CommunityLedAssessment,
    assess_community_led,
)
from clm_research.evaluation.did import (
    CallawaySantAnnaResult,
    DiDResult,
    EventStudyResult,
    callaway_santanna,
    compare_did,
    event_study,
    facility_panel,
    twfe_did,
)
from clm_research.evaluation.its import (
    ITSResult,
    controlled_its,
    harmonic_terms,
    segmented_regression,
)
from clm_research.evaluation.meta import MetaResult, meta_analysis
from clm_research.evaluation.multiplicity import adjust_pvalues, benjamini_hochberg
from clm_research.evaluation.progress import (
    VERDICTS,
    ProgressResult,
    progress_table,
    progress_to_target,
)

__all__ = [
    # shared
    "Effect",
    "EvaluationError",
    "EvaluationResult",
    "results_frame",
    # interrupted time series
    "ITSResult",
    "segmented_regression",
    "controlled_its",
    "harmonic_terms",
    # difference-in-differences
    "DiDResult",
    "EventStudyResult",
    "CallawaySantAnnaResult",
    "facility_panel",
    "twfe_did",
    "event_study",
    "callaway_santanna",
    "compare_did",
    # client level
    "ClientResult",
    "add_clm_exposure",
    "client_gee",
    "client_mixed",
    # accountability loop
    "FUNNEL_STAGES",
    "FunnelResult",
    "SurvivalResult",
    "CoxResult",
    "issue_funnel",
    "resolution_times",
    "time_to_resolution",
    "resolution_cox",
    # progress, multiplicity, synthesis
    "VERDICTS",
    "ProgressResult",
    "progress_to_target",
    "progress_table",
    "benjamini_hochberg",
    "adjust_pvalues",
    "MetaResult",
    "meta_analysis",
    # results chain
    "STRENGTHS",
    "ChainResult",
    "LinkResult",
    "DoseResponseResult",
    "chain_analysis",
    "link_effect",
    "dose_response",
    "mediated_share",
    "facility_round_values",
    "plot_chain",
    "chain_alt_text",
    "chain_paragraph",
    # community-led status
    "ROLES",
    "CRITERIA",
    "CommunityLedAssessment",
    "assess_community_led",
]
