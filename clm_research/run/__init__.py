"""Running the evaluation: one country's run in named steps, many countries, the kernel.

- :mod:`clm_research.run.country` — one country: parameters → hash → gate → notebooks → render →
  publish (:func:`~clm_research.run.country.run_country`);
- :mod:`clm_research.run.many` — many countries (processes or Dask), the synthesis, the index
  page and ``clm run`` (:func:`~clm_research.run.many.run_countries`);
- :mod:`clm_research.run.kernel` — the shared Jupyter kernel and the papermill engine;
- :mod:`clm_research.run.notebooks` — which notebooks run, in which order, their parameters;
- :mod:`clm_research.run.status` — ``status.json`` and the atomic swap of a finished report.
"""

__all__: list[str] = []
