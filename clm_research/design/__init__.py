"""Study design for CLM evaluations: sample size, power, sampling, schedules and reporting.

Everything a research-workshop participant needs to plan a study of a CLM programme:

* :mod:`~clm_research.design.survey` — sample size and precision of clustered exit surveys;
* :mod:`~clm_research.design.crt` — power and clusters for parallel cluster-randomised designs
  (noncentral t by default, normal approximation on request);
* :mod:`~clm_research.design.stepped_wedge` — Hussey & Hughes power and roll-out schedules;
* :mod:`~clm_research.design.planning` — an indicator's units and effect scale, the power of
  each design on the learner's numbers, rehearsal data;
* :mod:`~clm_research.design.facilities` — the facility list (CSV) checked into a sampling frame;
* :mod:`~clm_research.design.registration` — analysis-plan drafts and registration;
* :mod:`~clm_research.design.simulation` — power of ITS and DiD by simulation, naive-design bias;
* :mod:`~clm_research.design.sampling` — PPS and stratified facility samples with reserves;
* :mod:`~clm_research.design.results_chain` — from a question to the framework's results chain;
* :mod:`~clm_research.design.reporting` — Table 1, reporting checklists, 300-dpi figures.

Heavy libraries (statsmodels, matplotlib, tqdm) are imported inside the functions that use them.
"""

from __future__ import annotations

from clm_research.design.crt import (
    PowerMethod,
    crt_clusters_per_arm_binary,
    crt_clusters_per_arm_continuous,
    crt_clusters_per_arm_rate,
    crt_minimum_detectable_difference,
    crt_power_binary,
    crt_power_continuous,
    crt_power_rate,
)
from clm_research.design.facilities import (
    FACILITY_LIST_COLUMNS,
    demo_facility_list,
    demo_facility_list_path,
    read_facility_list,
    sampling_frame,
    templates_dir,
)
from clm_research.design.planning import (
    PLANNED_DESIGNS,
    OutcomeKind,
    OutcomeScale,
    PlanningNumbers,
    PowerCheck,
    allocate_arms,
    facilities_per_arm,
    indicator_by_round,
    power_check,
    rehearsal_data,
    round_labels,
    round_range,
)
from clm_research.design.registration import build_plan, drafts_dir, save_plan
from clm_research.design.reporting import (
    REPORTING_CHECKLIST,
    reporting_checklist,
    save_figure,
    table_one,
)
from clm_research.design.results_chain import plot_results_chain, results_chain
from clm_research.design.sampling import (
    FacilitySample,
    allocate_rollout,
    allocate_sample,
    pps_systematic,
    stratified_sample,
)
from clm_research.design.simulation import (
    SimulationPower,
    compare_designs_under_trend,
    did_power,
    simulate_crt_power,
    simulate_did_power,
    simulate_its_power,
    simulate_panel,
)
from clm_research.design.stepped_wedge import (
    RolloutSchedule,
    gls_treatment_variance,
    hussey_hughes_variance,
    stepped_wedge_design,
    stepped_wedge_power,
    stepped_wedge_schedule,
)
from clm_research.design.survey import (
    clusters_needed,
    design_effect,
    effective_sample_size,
    finite_population_correction,
    margin_of_error_mean,
    margin_of_error_proportion,
    sample_size_mean,
    sample_size_proportion,
    z_value,
)

__all__ = [
    "z_value",
    "design_effect",
    "effective_sample_size",
    "finite_population_correction",
    "sample_size_proportion",
    "sample_size_mean",
    "margin_of_error_proportion",
    "margin_of_error_mean",
    "clusters_needed",
    "PowerMethod",
    "crt_power_continuous",
    "crt_power_binary",
    "crt_power_rate",
    "crt_clusters_per_arm_continuous",
    "crt_clusters_per_arm_binary",
    "crt_clusters_per_arm_rate",
    "crt_minimum_detectable_difference",
    "stepped_wedge_design",
    "hussey_hughes_variance",
    "gls_treatment_variance",
    "stepped_wedge_power",
    "RolloutSchedule",
    "stepped_wedge_schedule",
    "SimulationPower",
    "simulate_crt_power",
    "simulate_its_power",
    "simulate_did_power",
    "did_power",
    "simulate_panel",
    "compare_designs_under_trend",
    "pps_systematic",
    "allocate_sample",
    "FacilitySample",
    "stratified_sample",
    "allocate_rollout",
    "results_chain",
    "plot_results_chain",
    "table_one",
    "REPORTING_CHECKLIST",
    "reporting_checklist",
    "save_figure",
    "FACILITY_LIST_COLUMNS",
    "templates_dir",
    "demo_facility_list_path",
    "read_facility_list",
    "sampling_frame",
    "demo_facility_list",
    "OutcomeKind",
    "OutcomeScale",
    "PlanningNumbers",
    "PowerCheck",
    "PLANNED_DESIGNS",
    "power_check",
    "facilities_per_arm",
    "allocate_arms",
    "indicator_by_round",
    "round_labels",
    "round_range",
    "rehearsal_data",
    "drafts_dir",
    "build_plan",
    "save_plan",
]
