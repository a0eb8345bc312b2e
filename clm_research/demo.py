"""Synthetic demo countries with a known truth: staggered CLM roll-out, planted effects and faults.

Everything is fictional: the countries carry user-assigned ISO codes (XA, XB, …), lie on
invented islands in the South Atlantic, and every person in them is made up. Each country is
generated from its ``demo:`` block in ``params/countries/<code>.yaml`` and its seed, so the
same parameters always give the same files.

What is planted (and written to ``truth.yaml`` next to the data):

* **Roll-out** — facilities are randomised to comparison (never CLM) or to one of several
  waves that start CLM at staggered rounds; the first two rounds are pre-CLM everywhere.
* **Effects** — CLM changes named outcomes with an effect that ramps up over three rounds
  (``ramp(e) = min(1, (e + 1) / 3)`` at event time ``e``) and is weaker in later waves
  (``wave_multiplier``), i.e. dynamic and heterogeneous: two-way fixed effects are biased,
  heterogeneity-robust estimators are not. ``refill_months`` and ``denied_service`` have no
  effect (true nulls). The realised average effect on the treated (ATT) is computed from the
  generating probabilities/means and written per cohort and round.
* **Structure** — facility random effects (intra-cluster correlation), a secular trend and
  seasonality (so naive pre/post comparisons are biased), issue logs whose resolution times
  follow a Weibull distribution per category with open issues censored at ``as_of``.
* **Raw exports** — interviews carry fake personal data (names, phone numbers, birth dates,
  free text) including fixed canary values, and about 1% extra faulty rows (duplicates,
  impossible values, unknown facilities, missing answers, future dates, bad round codes);
  routine data carry internally inconsistent rows. Every fault is listed in ``truth.yaml``
  with its rule (see :data:`clm_research.schema.RULES`). Faults are *extra* rows, so the rows a
  correct gate accepts are exactly the clean tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clm_research.config.country import CountryParams, DemoSpec, list_countries, load_country
from clm_research.paths import raw_dir
from clm_research.schema import ISSUE_CATEGORIES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CANARY_NAMES",
    "CANARY_PHONES",
    "CANARY_BIRTH_DATES",
    "CANARY_FREE_TEXT",
    "CANARY_EMAILS",
    "CANARY_MISPLACED",
    "EFFECTS",
    "CHAIN",
    "CHAIN_SERVICE_LINKS",
    "CHAIN_IMPACT_LINKS",
    "BROKEN_LINK",
    "RAMP_ROUNDS",
    "DemoCountry",
    "generate_country",
    "write_demo",
    "demo_countries",
    "ramp",
    "wave_multiplier",
]

#: Fixed fake personal values planted in every raw interview export: a privacy test scans
#: every artefact of a run and fails if any of them appears.
CANARY_NAMES: tuple[str, ...] = ("Canarya Zwelitsha-Qorvane", "Pipit Oyelaran-Wexford")
CANARY_PHONES: tuple[str, ...] = ("+999 555 010 7341", "+999 555 010 9262")
CANARY_BIRTH_DATES: tuple[str, ...] = ("1961-03-14", "1983-07-19")
CANARY_FREE_TEXT: tuple[str, ...] = ("CANARY-NOTE nurse Tavish shouted my status in the queue",)
CANARY_EMAILS: tuple[str, ...] = ("canarya.zwelitsha@example.org",)
#: Personal data typed into columns that are not personal (one extra interview row each):
#: canonical column -> the value typed. Ingestion must mask them (rule ``personal_data``).
CANARY_MISPLACED: dict[str, str] = {
    "sex": CANARY_NAMES[0],
    "age": CANARY_PHONES[0],
    "key_population": f"{CANARY_NAMES[1]} {CANARY_PHONES[1]}",
    "on_art": CANARY_EMAILS[0],
    "wait_minutes": CANARY_BIRTH_DATES[0],
}

#: Rounds over which an effect ramps to its full size.
RAMP_ROUNDS = 3

#: Planted CLM effects at full ramp, for the first wave (later waves: × wave_multiplier).
#: ``scale`` says on which scale the parameter acts; ``att`` in truth.yaml is on the
#: indicator's own scale (minutes, proportion points).
EFFECTS: dict[str, dict[str, Any]] = {
    "wait_minutes": {"scale": "relative mean", "full": -0.25, "indicator": "wait_time_mean"},
    "got_all_medicines": {
        "scale": "log-odds",
        "full": 0.6,
        "indicator": "medicine_stockout_experienced",
    },
    "treated_with_respect": {
        "scale": "log-odds (latent)",
        "full": 0.5,
        "indicator": "treated_with_respect",
    },
    "vl_result_received": {"scale": "log-odds", "full": 0.7, "indicator": "vl_result_received"},
    "confidentiality_breach": {
        "scale": "log-odds",
        "full": -0.5,
        "indicator": "confidentiality_breach",
    },
    "satisfaction": {"scale": "log-odds (latent)", "full": 0.4, "indicator": "satisfaction_mean"},
    "refill_months": {
        "scale": "none (true null)",
        "full": 0.0,
        "indicator": "multi_month_dispensing",
    },
    "denied_service": {"scale": "none (true null)", "full": 0.0, "indicator": "denied_service"},
    "arv_stockout": {"scale": "log-odds", "full": -0.8, "indicator": "arv_stockout_observed"},
    "vl_suppressed": {"scale": "log-odds", "full": 0.3, "indicator": "viral_suppression"},
    "interruptions": {"scale": "log rate", "full": -0.15, "indicator": "treatment_interruption"},
}

_TRENDS = {"wait_per_round": 0.01, "q1_wait": 0.08}

#: The planted results chain (monitoring intensity → issues found and acted on → services →
#: impact). Its randomness comes from a second stream seeded with ``[seed, _CHAIN_STREAM]``,
#: so the draws of everything planted before it are unchanged.
CHAIN: dict[str, Any] = {
    # monitoring intensity: each CLM facility's chance of a feedback meeting at a visit
    "feedback_meeting_probability": (0.3, 0.95),
    # extra issues identified at a visit with a feedback meeting (Poisson mean), and their
    # categories: management and monitors go through what clients reported, so client-facing
    # problems dominate
    "extra_issues_per_meeting": 2.5,
    "extra_issue_categories": {
        "stock_out": 0.25,
        "waiting_time": 0.25,
        "staff_attitude": 0.2,
        "confidentiality": 0.2,
        "viral_load": 0.04,
        "infrastructure": 0.02,
        "opening_hours": 0.02,
        "other": 0.02,
    },
    # chance that an issue gets a corrective action agreed, by whether a meeting was held
    "action_agreed_probability": {"without_meeting": 0.5, "with_meeting": 0.9},
    # without an agreed action a problem is rarely solved: resolution takes this many times longer
    "slower_without_action": 20.0,
}

#: Resolving issues of a category improves the matching service indicator the next round, in
#: proportion to the share of that category's issues resolved (``S``): waiting time −15·S
#: minutes; stock-outs: a share 0.6·S of the clients who would have missed medicines get
#: them; respect: the latent answer +1.0·S; confidentiality breaches: log-odds −1.0·S.
CHAIN_SERVICE_LINKS: dict[str, dict[str, Any]] = {
    "medicine_stockout_experienced": {"category": "stock_out", "size": 0.6},
    "wait_time_mean": {"category": "waiting_time", "size": 15.0},
    "treated_with_respect": {"category": "staff_attitude", "size": 1.0},
    "confidentiality_breach": {"category": "confidentiality", "size": 1.0},
}

#: Service indicators, as measured in a facility-round, shift the next quarter's routine
#: outcomes additively: ``size × (measured − reference)`` on the interruption rate (per
#: person-month) or the suppression probability. The waiting-time link is planted broken.
CHAIN_IMPACT_LINKS: dict[tuple[str, str], dict[str, float]] = {
    ("medicine_stockout_experienced", "treatment_interruption"): {"size": 0.01, "reference": 0.12},
    ("treated_with_respect", "treatment_interruption"): {"size": -0.004, "reference": 0.75},
    ("multi_month_dispensing", "treatment_interruption"): {"size": -0.004, "reference": 0.6},
    ("arv_stockout_observed", "treatment_interruption"): {"size": 0.003, "reference": 0.15},
    ("wait_time_mean", "treatment_interruption"): {"size": 0.0, "reference": 80.0},
    ("medicine_stockout_experienced", "viral_suppression"): {"size": -0.08, "reference": 0.12},
    ("vl_result_received", "viral_suppression"): {"size": 0.05, "reference": 0.7},
}

#: The link planted with no effect: waiting times improve with CLM, retention does not follow.
BROKEN_LINK: tuple[str, str] = ("wait_time_mean", "treatment_interruption")

_CHAIN_STREAM = 16

_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ran",
    "te",
    "so",
    "vu",
    "ne",
    "da",
    "ri",
    "mo",
    "zan",
    "be",
    "lu",
    "ta",
    "wen",
    "ko",
    "ra",
    "si",
    "pe",
    "yo",
    "ba",
    "mer",
    "dun",
)
_FIRST = (
    "Amara",
    "Tendai",
    "Lerato",
    "Kofi",
    "Zanele",
    "Musa",
    "Nia",
    "Jabu",
    "Ayo",
    "Thandi",
    "Sipho",
    "Imani",
)
_LAST = (
    "Moyo",
    "Banda",
    "Dube",
    "Okafor",
    "Naidoo",
    "Phiri",
    "Mensah",
    "Khumalo",
    "Ndlovu",
    "Sithole",
)
_COMMENTS = (
    "waited long at pharmacy",
    "staff were kind",
    "no privacy at the counselling room",
    "medicines given for three months",
    "was told to come back tomorrow",
)


def ramp(event_time: np.ndarray) -> np.ndarray:
    """Share of the full effect reached ``event_time`` rounds after CLM started (0 before)."""
    import numpy as np

    e = np.asarray(event_time, dtype=float)
    return np.where(e >= 0, np.minimum(1.0, (e + 1.0) / RAMP_ROUNDS), 0.0)


def wave_multiplier(wave: np.ndarray) -> np.ndarray:
    """Effect size of wave ``w`` (0-based) relative to the first wave: 1, 0.75, 0.5, …"""
    import numpy as np

    return np.maximum(0.25, 1.0 - 0.25 * np.asarray(wave, dtype=float))


@dataclass
class DemoCountry:
    """One generated demo country.

    Attributes
    ----------
    code
        Country code.
    clean
        Canonical tables without faults (what a correct gate accepts).
    raw
        Tables as written to ``data/raw/<code>/``: with personal data and planted faults.
    truth
        True effects, ATT tables and the list of planted faults.
    districts
        District boundaries as a GeoJSON FeatureCollection.
    """

    code: str
    clean: dict[str, pd.DataFrame]
    raw: dict[str, pd.DataFrame]
    truth: dict[str, Any]
    districts: dict[str, Any] = field(repr=False)


def _quarters(first: str, n: int) -> list[str]:
    year, q = int(first[:4]), int(first[5])
    out = []
    for _ in range(n):
        out.append(f"{year}Q{q}")
        q += 1
        if q == 5:
            year, q = year + 1, 1
    return out


def _months(first: str, n: int) -> list[str]:
    year, m = int(first[:4]), int(first[5:7])
    out = []
    for _ in range(n):
        out.append(f"{year}-{m:02d}")
        m += 1
        if m == 13:
            year, m = year + 1, 1
    return out


def _expit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    p: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return p


def _place_name(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        n = int(rng.integers(2, 4))
        name = "".join(rng.choice(_SYLLABLES, size=n)).capitalize()
        if name not in used:
            used.add(name)
            return name


def _geography(spec: DemoSpec, rng: np.random.Generator) -> tuple[list[Any], list[str], list[str]]:
    """District polygons (shapely) of a fictional island, their names and regions."""
    import numpy as np
    from shapely import MultiPoint, Point, Polygon, voronoi_polygons

    cx, cy = spec.centre
    k = 64
    angles = np.linspace(0, 2 * np.pi, k, endpoint=False)
    radius = 1.4 * (
        1 + 0.18 * np.sin(3 * angles + rng.uniform(0, 6)) + 0.06 * rng.standard_normal(k)
    )
    island = Polygon(
        np.column_stack([cx + 1.3 * radius * np.cos(angles), cy + radius * np.sin(angles)])
    )
    island = island.buffer(0)
    seeds: list[Any] = []
    minx, miny, maxx, maxy = island.bounds
    while len(seeds) < spec.districts:
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if island.contains(p) and all(p.distance(s) > 0.25 for s in seeds):
            seeds.append(p)
    cells = voronoi_polygons(MultiPoint(seeds), extend_to=island.envelope.buffer(1))
    polys = []
    for s in seeds:
        cell = next(c for c in cells.geoms if c.contains(s))
        polys.append(cell.intersection(island))
    used: set[str] = set()
    names = [_place_name(rng, used) for _ in polys]
    # regions: bands of districts by longitude
    order = np.argsort([p.centroid.x for p in polys])
    region_names = [_place_name(rng, used) + " Region" for _ in range(spec.regions)]
    regions = [""] * len(polys)
    for rank, idx in enumerate(order):
        regions[idx] = region_names[min(spec.regions - 1, rank * spec.regions // len(polys))]
    return polys, names, regions


def _point_in(poly: Any, rng: np.random.Generator) -> tuple[float, float]:
    from shapely import Point

    minx, miny, maxx, maxy = poly.bounds
    inner = poly.buffer(-0.02) if poly.buffer(-0.02).area > 0 else poly
    while True:
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if inner.contains(p):
            return round(p.y, 5), round(p.x, 5)


def _round_dates(rounds: list[str]) -> dict[str, Any]:
    import pandas as pd

    return {r: pd.Timestamp(year=int(r[:4]), month=(int(r[5]) - 1) * 3 + 1, day=1) for r in rounds}


def generate_country(
    code: str,
    params: CountryParams | None = None,
    facilities: int | None = None,
    interviews_per_round: int | None = None,
) -> DemoCountry:
    """Generate one demo country from its parameters (deterministic for a given seed).

    Parameters
    ----------
    code
        A demo country code with a ``demo:`` block in ``params/countries/<code>.yaml``.
    params
        Parameters to use instead of reading the file.
    facilities, interviews_per_round
        Override the size (e.g. Ritshidze scale: 400 facilities × 100 interviews).

    Returns
    -------
    DemoCountry
    """
    import numpy as np
    import pandas as pd

    from clm_research.tables import coerce

    params = params or load_country(code)
    if params.demo is None:
        from clm_research.errors import ParamsError

        raise ParamsError(
            f"params/countries/{code}.yaml has no demo: block; it is not a demo country"
        )
    spec = params.demo
    if facilities is not None or interviews_per_round is not None:
        spec = spec.model_copy(
            update={
                "facilities": facilities or spec.facilities,
                "interviews_per_round": interviews_per_round or spec.interviews_per_round,
            }
        )
    rng = np.random.default_rng(spec.seed)
    chain_rng = np.random.default_rng([spec.seed, _CHAIN_STREAM])
    as_of = pd.Timestamp(params.as_of) if params.as_of else None

    # ---------------------------------------------------------------- geography and facilities
    polys, district_names, region_of = _geography(spec, rng)
    n_f = spec.facilities
    district_idx = np.concatenate(
        [np.arange(len(polys)), rng.integers(0, len(polys), n_f - len(polys))]
    )
    rng.shuffle(district_idx)
    types = rng.choice(
        ["hospital", "health_centre", "clinic", "dispensary"], n_f, p=[0.1, 0.35, 0.4, 0.15]
    )
    ownership = rng.choice(
        ["public", "faith_based", "private", "ngo"], n_f, p=[0.7, 0.15, 0.08, 0.07]
    )
    coords = [_point_in(polys[d], rng) for d in district_idx]
    fac_ids = [f"{code}-F{i + 1:03d}" for i in range(n_f)]
    type_label = {
        "hospital": "Hospital",
        "health_centre": "Health Centre",
        "clinic": "Clinic",
        "dispensary": "Dispensary",
    }
    names = [
        f"{district_names[d]} {type_label[t]} {i + 1}"
        for i, (d, t) in enumerate(zip(district_idx, types, strict=True))
    ]

    rounds = _quarters(spec.first_round, spec.rounds)
    r_start = _round_dates(rounds)
    step = max(1, (spec.rounds - 2) // spec.waves)
    wave_start_idx = [min(spec.rounds - 1, 2 + w * step) for w in range(spec.waves)]
    n_comp = int(round(spec.comparison_share * n_f))
    arm = np.full(n_f, -1)
    perm = rng.permutation(n_f)
    treated = perm[n_comp:]
    arm[treated] = np.arange(len(treated)) % spec.waves  # wave 0..W-1; -1 = comparison
    start_idx = np.where(arm >= 0, np.array(wave_start_idx)[np.maximum(arm, 0)], 10**6)
    clm_start = [r_start[rounds[s]] if s < 10**6 else pd.NaT for s in start_idx]
    facilities_df = pd.DataFrame(
        {
            "facility_id": fac_ids,
            "name": names,
            "region": [region_of[d] for d in district_idx],
            "district": [district_names[d] for d in district_idx],
            "type": types,
            "ownership": ownership,
            "latitude": [c[0] for c in coords],
            "longitude": [c[1] for c in coords],
            "clm_start": clm_start,
        }
    )
    # monitoring intensity of the results chain (drawn for every facility; used where CLM runs)
    meeting_lo, meeting_hi = CHAIN["feedback_meeting_probability"]
    meeting_p = chain_rng.uniform(float(meeting_lo), float(meeting_hi), n_f)
    # facility random effects
    u_wait = rng.normal(0, 0.3, n_f)
    u_bin = rng.normal(0, 0.5, n_f)  # logit scale: ICC ≈ 0.5²/(0.5² + π²/3) ≈ 0.07
    size = np.exp(rng.normal(np.log(900), 0.6, n_f))

    # ---------------------------------------------------------------- interviews
    m = spec.interviews_per_round
    f_idx = np.repeat(np.arange(n_f), spec.rounds * m)
    r_idx = np.tile(np.repeat(np.arange(spec.rounds), m), n_f)
    n = f_idx.size
    e_time = r_idx - start_idx[f_idx]
    mult = np.where(arm[f_idx] >= 0, wave_multiplier(np.maximum(arm[f_idx], 0)), 0.0)
    dose = ramp(e_time) * mult  # share of the first wave's full effect
    quarter = np.array([int(r[5]) for r in rounds])[r_idx]
    day = rng.integers(14, 76, n)
    dates = np.array([r_start[r] for r in rounds], dtype="datetime64[ns]")[r_idx] + day.astype(
        "timedelta64[D]"
    )
    sex = rng.choice(["female", "male", "other"], n, p=[0.62, 0.36, 0.02])
    kp_levels = np.array(["none", "msm", "sex_worker", "pwud", "transgender", "prisoner"])
    kp_p = np.array([0.82, 0.05, 0.07, 0.03, 0.02, 0.01])
    kp = rng.choice(kp_levels, n, p=kp_p)
    kp_penalty = {
        "none": 0.0,
        "msm": -0.4,
        "sex_worker": -0.5,
        "pwud": -0.6,
        "transgender": -0.5,
        "prisoner": -0.3,
    }
    gamma_kp = np.array([kp_penalty[k] for k in kp_levels])
    kp_code = np.searchsorted(kp_levels, kp, sorter=np.argsort(kp_levels))
    kp_code = np.argsort(kp_levels)[kp_code]
    age = np.clip(np.round(18 + rng.gamma(4.0, 6.5, n)), 15, 90).astype(int)
    on_art = rng.random(n) < 0.75

    trend = (1 + _TRENDS["wait_per_round"]) ** r_idx * np.where(
        quarter == 1, 1 + _TRENDS["q1_wait"], 1.0
    )
    mu0 = 80.0 * np.exp(u_wait[f_idx]) * trend
    mu = mu0 * (1 + EFFECTS["wait_minutes"]["full"] * dose)
    # The raw random draws are kept (gamma variates, uniforms, logistic noise) so that the
    # results chain can shift each answer later, once the issue log exists, without drawing
    # from `rng` again: every existing draw stays the same (see _apply_chain_shifts).
    wait_draw = rng.gamma(3.0, mu / 3.0)

    def binary(
        base: float, key: str, extra: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        eta0 = base + u_bin[f_idx] + extra
        p0 = _expit(eta0)
        p1 = _expit(eta0 + EFFECTS[key]["full"] * dose)
        return rng.random(n), p0, p1

    ga_u, ga_p0, ga_p1 = binary(2.0, "got_all_medicines", -0.05 * r_idx)
    vr_u, vr_p0, vr_p1 = binary(0.8, "vl_result_received")
    br_u, br_p0, br_p1 = binary(-2.8, "confidentiality_breach", -0.5 * gamma_kp[kp_code])
    denied_u, _, denied_p1 = binary(-3.5, "denied_service")

    # ordinal 1-5 answers from a latent logistic variable
    cuts = np.array([-2.5, -1.2, 0.0, 1.3])

    def ordinal(key: str, base: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        eta0 = base + u_bin[f_idx] + gamma_kp[kp_code]
        eta1 = eta0 + EFFECTS[key]["full"] * dose
        return rng.logistic(size=n), eta0, eta1

    rs_noise, rs_eta0, rs_eta1 = ordinal("treated_with_respect", 1.0)
    sa_noise, sa_eta0, sa_eta1 = ordinal("satisfaction", 0.8)
    refill = rng.choice([1, 2, 3, 6], n, p=[0.25, 0.15, 0.4, 0.2])
    item_missing = {  # item non-response, missing at random
        col: rng.random(n) < 0.02
        for col in (
            "wait_minutes",
            "treated_with_respect",
            "satisfaction",
            "confidentiality_breach",
        )
    }

    # ---------------------------------------------------------------- observations and issues
    obs_rows = []
    for fi in treated:
        for ri in range(start_idx[fi], spec.rounds):
            obs_rows.append((fi, ri))
    obs_f = np.array([o[0] for o in obs_rows], dtype=int)
    obs_r = np.array([o[1] for o in obs_rows], dtype=int)
    k = obs_f.size
    done = rng.random(k) < 0.93
    obs_dose = ramp(obs_r - start_idx[obs_f]) * wave_multiplier(arm[obs_f])
    arv_p0 = _expit(-1.7 + u_bin[obs_f])
    arv_p1 = _expit(-1.7 + u_bin[obs_f] + EFFECTS["arv_stockout"]["full"] * obs_dose)
    visit_date = np.array(
        [r_start[rounds[r]] for r in obs_r], dtype="datetime64[ns]"
    ) + rng.integers(7, 80, k).astype("timedelta64[D]")

    def maybe(p: np.ndarray | float) -> Any:
        vals = pd.array(rng.random(k) < p, dtype="boolean")
        vals[~done] = pd.NA
        return vals

    observations = coerce(
        pd.DataFrame(
            {
                "facility_id": np.array(fac_ids)[obs_f],
                "round": np.array(rounds)[obs_r],
                "date": pd.Series(visit_date).where(done),
                "visit_completed": done,
                "arv_stockout": maybe(arv_p1),
                "condom_stockout": maybe(0.12),
                "lubricant_stockout": maybe(0.2),
                "prep_stockout": maybe(0.1),
                "opened_on_time": maybe(0.8),
                "private_consultation_space": maybe(0.7),
                "kp_friendly_services": maybe(_expit(0.0 + 1.0 * obs_dose)),
                # monitoring intensity: each CLM facility holds feedback meetings at its own rate
                "feedback_meeting_held": maybe(meeting_p[obs_f]),
            }
        ),
        "observations",
    )

    categories = list(ISSUE_CATEGORIES)  # the data model's list, in its order
    cat_p = [0.22, 0.2, 0.15, 0.08, 0.12, 0.1, 0.08, 0.05]
    cat_median = {
        "stock_out": 30,
        "waiting_time": 60,
        "staff_attitude": 90,
        "confidentiality": 75,
        "viral_load": 45,
        "infrastructure": 180,
        "opening_hours": 40,
        "other": 60,
    }
    weibull_shape = 1.3

    def issue_draws(
        gen: np.random.Generator, count: int, p_category: list[float]
    ) -> dict[str, np.ndarray]:
        """Random attributes of ``count`` issues, always drawn from ``gen`` in this order."""
        return {
            "category": gen.choice(categories, count, p=p_category),
            "severity": gen.choice(["low", "medium", "high"], count, p=[0.35, 0.45, 0.2]),
            "weibull": gen.weibull(weibull_shape, count),
            "escalate_u": gen.random(count),
            "level": gen.choice(["district", "regional", "national"], count, p=[0.6, 0.3, 0.1]),
            "agree_u": gen.random(count),
            "escalate_frac": gen.uniform(0.05, 0.3, count),
            "agree_frac": gen.uniform(0.3, 0.7, count),
        }

    n_issues = rng.poisson(2.2 * (1 - 0.2 * obs_dose)) * done
    base = issue_draws(rng, int(n_issues.sum()), cat_p)
    # results chain: a feedback meeting brings extra problems to light (separate stream)
    meeting = observations["feedback_meeting_held"].fillna(False).to_numpy(dtype=bool)
    n_extra = chain_rng.poisson(CHAIN["extra_issues_per_meeting"], k) * (done & meeting)
    extra_p = [CHAIN["extra_issue_categories"][c] for c in categories]
    extra = issue_draws(chain_rng, int(n_extra.sum()), extra_p)
    iss_obs = np.concatenate([np.repeat(np.arange(k), n_issues), np.repeat(np.arange(k), n_extra)])
    order = np.argsort(iss_obs, kind="stable")  # by visit; a visit's extra issues come last
    iss_obs = iss_obs[order]
    draws = {key: np.concatenate([base[key], extra[key]])[order] for key in base}
    n_i = iss_obs.size
    cat, severity = draws["category"], draws["severity"]
    identified = visit_date[iss_obs]
    median_days = np.array([cat_median[c] for c in cat]) * np.where(severity == "high", 0.8, 1.0)
    scale = median_days / np.log(2) ** (1 / weibull_shape)
    # an action agreed at the feedback meeting makes resolution likely; without one a problem
    # is solved only slowly, by the facility on its own (CHAIN["slower_without_action"])
    p_agree = np.where(
        meeting[iss_obs],
        CHAIN["action_agreed_probability"]["with_meeting"],
        CHAIN["action_agreed_probability"]["without_meeting"],
    )
    agreed = draws["agree_u"] < p_agree
    slow = np.where(agreed, 1.0, CHAIN["slower_without_action"])
    t_res = np.ceil(slow * scale * draws["weibull"]).astype(int)
    esc = draws["escalate_u"] < np.where(severity == "high", 0.7, 0.4)
    level = np.where(esc, draws["level"], "facility")

    def to_days(d: np.ndarray) -> np.ndarray:
        return d.astype("timedelta64[D]")

    escalated_on = identified + to_days(np.ceil(t_res * draws["escalate_frac"]).astype(int))
    # actions are agreed at or soon after the feedback meeting (within 5-10 days)
    agree_days = np.minimum(np.ceil(14 * draws["agree_frac"]).astype(int), t_res)
    agreed_on = identified + to_days(agree_days)
    resolved_on = identified + to_days(t_res)
    cutoff = np.datetime64(
        as_of or pd.Timestamp(r_start[rounds[-1]]) + pd.Timedelta(days=105), "ns"
    )
    is_resolved = resolved_on <= cutoff
    esc_seen = esc & (escalated_on <= cutoff)
    agr_seen = agreed & (agreed_on <= cutoff)
    status = np.where(
        is_resolved,
        "resolved",
        np.where(agr_seen, "action_agreed", np.where(esc_seen, "escalated", "open")),
    )
    issues = coerce(
        pd.DataFrame(
            {
                "issue_id": [f"{code}-X{i + 1:06d}" for i in range(n_i)],
                "facility_id": np.array(fac_ids)[obs_f[iss_obs]],
                "round": np.array(rounds)[obs_r[iss_obs]],
                "category": cat,
                "severity": severity,
                "identified_on": identified,
                "escalated_on": pd.Series(escalated_on).where(esc_seen),
                "escalation_level": np.where(esc_seen, level, "facility"),
                "action_agreed_on": pd.Series(agreed_on).where(agr_seen),
                "resolved_on": pd.Series(resolved_on).where(is_resolved),
                "status": status,
            }
        ),
        "issues",
    )

    # ---------------------------------------------------------------- results chain → services
    # Share of each category's issues resolved, per facility × round (NaN: none raised).
    chain_cells = np.full((n_f, spec.rounds), np.nan)
    resolved_share: dict[str, np.ndarray] = {}
    for category in {c["category"] for c in CHAIN_SERVICE_LINKS.values()}:
        mine = cat == category
        raised = np.zeros((n_f, spec.rounds))
        solved = np.zeros((n_f, spec.rounds))
        np.add.at(raised, (obs_f[iss_obs[mine]], obs_r[iss_obs[mine]]), 1.0)
        np.add.at(solved, (obs_f[iss_obs[mine]], obs_r[iss_obs[mine]]), is_resolved[mine])
        resolved_share[category] = np.where(raised > 0, solved / np.maximum(raised, 1), chain_cells)

    def previous_round(share: np.ndarray) -> np.ndarray:
        """The share of the round before each interview's round (NaN in the first round)."""
        out = np.full(n, np.nan)
        later = r_idx >= 1
        out[later] = share[f_idx[later], r_idx[later] - 1]
        return out

    s_prev = {
        ind: previous_round(resolved_share[c["category"]]) for ind, c in CHAIN_SERVICE_LINKS.items()
    }
    shift = {ind: np.nan_to_num(v, nan=0.0) for ind, v in s_prev.items()}
    # waiting time: minutes off the mean, on the gamma variate's scale (exact)
    mu_c = mu - CHAIN_SERVICE_LINKS["wait_time_mean"]["size"] * shift["wait_time_mean"]
    rescale = shift["wait_time_mean"] > 0
    wait_draw[rescale] *= mu_c[rescale] / mu[rescale]
    wait = np.round(wait_draw)
    # stock-outs: a share `h` of the clients who would have missed medicines get them
    h = CHAIN_SERVICE_LINKS["medicine_stockout_experienced"]["size"]
    ga_pc = ga_p1 + h * shift["medicine_stockout_experienced"] * (1 - ga_p1)
    got_all = ga_u < ga_pc
    # respect: the latent answer moves up; breaches: the log-odds move down
    kappa = CHAIN_SERVICE_LINKS["treated_with_respect"]["size"]
    rs_eta1c = rs_eta1 + kappa * shift["treated_with_respect"]
    respect = 1 + np.searchsorted(cuts, rs_eta1c + rs_noise)
    satisfaction = 1 + np.searchsorted(cuts, sa_eta1 + sa_noise)
    omega = CHAIN_SERVICE_LINKS["confidentiality_breach"]["size"]
    br_pc = _expit(np.log(br_p1 / (1 - br_p1)) - omega * shift["confidentiality_breach"])
    br_pc = np.where(shift["confidentiality_breach"] > 0, br_pc, br_p1)  # unchanged elsewhere
    breach = br_u < br_pc
    vl_recv = vr_u < vr_p1
    denied = denied_u < denied_p1

    interview_ids = np.char.add(f"{code}-I", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    interviews = pd.DataFrame(
        {
            "interview_id": interview_ids,
            "facility_id": np.array(fac_ids)[f_idx],
            "date": dates,
            "round": np.array(rounds)[r_idx],
            "sex": sex,
            "age": age,
            "key_population": kp,
            "on_art": on_art,
            "wait_minutes": wait,
            "got_all_medicines": pd.array(np.where(on_art, got_all, False), dtype="boolean"),
            "treated_with_respect": respect,
            "confidentiality_breach": breach,
            "vl_result_received": pd.array(np.where(on_art, vl_recv, False), dtype="boolean"),
            "satisfaction": satisfaction,
            "denied_service": denied,
            "refill_months": pd.array(refill, dtype="Int64"),
        }
    )
    for col in ("got_all_medicines", "vl_result_received", "refill_months"):
        interviews.loc[~on_art, col] = pd.NA
    for col, miss in item_missing.items():
        interviews[col] = interviews[col].astype("object" if col != "wait_minutes" else "float64")
        interviews.loc[miss, col] = np.nan if col == "wait_minutes" else pd.NA
    interviews = coerce(interviews, "interviews")

    # ---------------------------------------------------------------- routine (facility × month)
    months = _months(spec.routine_first_month, spec.routine_months)
    n_m = len(months)
    month_start = pd.to_datetime([f"{p}-01" for p in months]).values
    rf = np.repeat(np.arange(n_f), n_m)
    rm = np.tile(np.arange(n_m), n_f)
    clm_start_ns = np.array(facilities_df["clm_start"].values, dtype="datetime64[ns]")
    active = ~np.isnat(clm_start_ns[rf]) & (month_start[rm] >= clm_start_ns[rf])
    # event time in rounds (quarters) since CLM start, for the ramp
    month_round = (
        (pd.DatetimeIndex(month_start).year.values - int(spec.first_round[:4])) * 4
        + (pd.DatetimeIndex(month_start).month.values - 1) // 3
        - (int(spec.first_round[5]) - 1)
    )
    r_e = np.where(active, month_round[rm] - start_idx[rf], -1)
    r_dose = (
        ramp(r_e) * np.where(arm[rf] >= 0, wave_multiplier(np.maximum(arm[rf], 0)), 0.0) * active
    )
    season = 1 + 0.1 * np.sin(2 * np.pi * (pd.DatetimeIndex(month_start).month.values[rm] - 1) / 12)
    tx_curr = np.round(size[rf] * 1.004**rm).astype(int)
    supp_p0 = _expit(1.6 + 0.5 * u_bin[rf] + 0.01 * rm)
    supp_p1 = _expit(np.log(supp_p0 / (1 - supp_p0)) + EFFECTS["vl_suppressed"]["full"] * r_dose)
    vl_tested = rng.binomial(tx_curr, 0.08)
    rate0 = 0.012 * season
    rate1 = rate0 * np.exp(EFFECTS["interruptions"]["full"] * r_dose)
    tests = rng.poisson(0.35 * tx_curr * season)
    tx_new = rng.poisson(0.015 * tx_curr * season)
    interruptions = rng.poisson(tx_curr * rate1)
    vl_suppressed = rng.binomial(vl_tested, supp_p1)
    prep_new = rng.poisson(0.01 * tx_curr * season)
    positives = rng.binomial(tests, 0.04)

    # ---------------------------------------------------------------- results chain → impact
    # The service level a facility's clients report in one round (the *measured* facility-round
    # indicator, as the framework defines it) moves its routine outcomes the next quarter.
    def cell_mean(values: np.ndarray, scope: np.ndarray) -> np.ndarray:
        rows_in = np.zeros((n_f, spec.rounds))
        hits = np.zeros((n_f, spec.rounds))
        np.add.at(rows_in, (f_idx[scope], r_idx[scope]), 1.0)
        np.add.at(hits, (f_idx[scope], r_idx[scope]), values[scope].astype(float))
        return np.where(rows_in > 0, hits / np.maximum(rows_in, 1), np.nan)

    answered = {col: ~miss for col, miss in item_missing.items()}
    measured = {
        "medicine_stockout_experienced": cell_mean(~got_all, on_art),
        "wait_time_mean": cell_mean(wait, answered["wait_minutes"]),
        "treated_with_respect": cell_mean(respect >= 4, answered["treated_with_respect"]),
        "vl_result_received": cell_mean(vl_recv, on_art),
        "multi_month_dispensing": cell_mean(refill >= 3, on_art),
    }
    expected_change = {  # E[measured | CLM] - E[measured | no CLM], for the ATT truth
        "medicine_stockout_experienced": cell_mean((1 - ga_pc) - (1 - ga_p0), on_art),
        "vl_result_received": cell_mean(vr_p1 - vr_p0, on_art),
    }
    # ARV stock-outs happen everywhere but are seen only on monitoring visits: unseen ones
    # (comparison facilities, rounds before CLM, missed visits) are drawn on the chain stream.
    cell_r = np.arange(spec.rounds)[None, :]
    cell_dose = (
        ramp(cell_r - start_idx[:, None])
        * np.where(arm >= 0, wave_multiplier(np.maximum(arm, 0)), 0.0)[:, None]
    )
    arv_cell_p = _expit(-1.7 + u_bin[:, None] + EFFECTS["arv_stockout"]["full"] * cell_dose)
    arv_seen = np.full((n_f, spec.rounds), np.nan)
    obs_arv = observations["arv_stockout"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    arv_seen[obs_f, obs_r] = obs_arv
    arv_hidden = (chain_rng.random((n_f, spec.rounds)) < arv_cell_p).astype(float)
    arv_any = np.where(np.isfinite(arv_seen), arv_seen, arv_hidden)
    measured["arv_stockout_observed"] = arv_seen
    prev = month_round[rm] - 1
    has_prev = (prev >= 0) & (prev < spec.rounds)
    prev_c = np.clip(prev, 0, spec.rounds - 1)

    def lagged(grid: np.ndarray) -> np.ndarray:
        return np.where(has_prev, grid[rf, prev_c], np.nan)

    shift_of = {"treatment_interruption": np.zeros(rf.size), "viral_suppression": np.zeros(rf.size)}
    truth_change = np.zeros(rf.size)  # chain part of the viral-suppression ATT
    for (upstream, downstream), link in CHAIN_IMPACT_LINKS.items():
        grid = arv_any if upstream == "arv_stockout_observed" else measured[upstream]
        value = lagged(grid)
        shift_of[downstream] += np.nan_to_num(link["size"] * (value - link["reference"]))
        if downstream == "viral_suppression" and upstream in expected_change:
            truth_change += np.nan_to_num(link["size"] * lagged(expected_change[upstream]))
    rate_shift, vs_shift = shift_of["treatment_interruption"], shift_of["viral_suppression"]
    rate_c = np.maximum(rate1 + rate_shift, 1e-6)
    vs_c = np.clip(supp_p1 + vs_shift, 1e-4, 1 - 1e-4)
    clipped = int((rate1 + rate_shift < 1e-6).sum() + (vs_c != supp_p1 + vs_shift).sum())
    up = rate_shift > 0  # Poisson(a) + Poisson(b) = Poisson(a + b); thinning for a decrease
    interruptions[up] += chain_rng.poisson(tx_curr[up] * rate_shift[up])
    down = rate_shift < 0
    interruptions[down] = chain_rng.binomial(interruptions[down], rate_c[down] / rate1[down])
    up = vs_shift > 0  # successes added among the failures, or thinned: exact binomials
    vl_suppressed[up] += chain_rng.binomial(
        vl_tested[up] - vl_suppressed[up], (vs_c[up] - supp_p1[up]) / (1 - supp_p1[up])
    )
    down = vs_shift < 0
    vl_suppressed[down] = chain_rng.binomial(vl_suppressed[down], vs_c[down] / supp_p1[down])
    routine = coerce(
        pd.DataFrame(
            {
                "facility_id": np.array(fac_ids)[rf],
                "period": np.array(months)[rm],
                "tx_curr": tx_curr,
                "tx_new": tx_new,
                "interruptions": interruptions,
                "vl_tested": vl_tested,
                "vl_suppressed": vl_suppressed,
                "prep_new": prep_new,
                "tests": tests,
                "positives": positives,
            }
        ),
        "routine",
    )

    # ---------------------------------------------------------------- organisations and outreach
    constituencies = [
        "plhiv",
        "sex_worker",
        "msm",
        "pwud",
        "transgender",
        "women",
        "youth",
        "mixed",
    ]
    org_rows = []
    org_truth = {}
    for i in range(spec.organisations):
        led = i % 3 != 2  # two in three are community-led
        share = rng.uniform(0.6, 0.95) if led else rng.uniform(0.1, 0.45)
        row: dict[str, Any] = {
            "organisation_id": f"{code}-O{i + 1:02d}",
            "name": f"{_place_name(rng, set())} {'Network of People Living with HIV' if led else 'Health Trust'}",
            "constituency": constituencies[i % len(constituencies)] if led else "mixed",
        }
        for role, lo, hi in (
            ("governance", 5, 12),
            ("leadership", 2, 6),
            ("staff", 5, 40),
            ("spokespeople", 1, 4),
            ("members", 50, 800),
            ("volunteers", 10, 120),
        ):
            total = int(rng.integers(lo, hi + 1))
            row[f"{role}_total"] = total
            count = int(round(total * share))
            # a strict majority when led, never one otherwise (rounding must not flip the truth)
            count = max(count, total // 2 + 1) if led else min(count, (total - 1) // 2)
            row[f"{role}_constituency"] = count
        row["accountability_mechanism"] = bool(led or rng.random() < 0.3)
        row["funding_government_share"] = round(float(rng.uniform(0, 0.3)), 2)
        row["funding_donor_share"] = round(float(rng.uniform(0.3, 0.7)), 2)
        row["agenda_set_by_constituency"] = led
        planned = int(rng.integers(10, 40))
        row["monitors_planned"] = planned
        row["monitors_trained"] = int(rng.binomial(planned, 0.85))
        row["reports_published"] = int(rng.integers(1, 5))
        org_rows.append(row)
        org_truth[row["organisation_id"]] = led
    organisations = coerce(pd.DataFrame(org_rows), "organisations")

    out_months = months[-24:]
    led_orgs = [o for o, led in org_truth.items() if led] or list(org_truth)
    out_rows = []
    for s in range(spec.outreach_sites):
        site = f"{code}-S{s + 1:03d}"
        org = led_orgs[s % len(led_orgs)]
        district = district_names[int(rng.integers(0, len(polys)))]
        groups = rng.choice(
            ["sex_worker", "msm", "pwud", "transgender"],
            size=int(rng.integers(1, 3)),
            replace=False,
        )
        for g in groups:
            size_est = int(rng.integers(60, 400))
            workers = max(1, int(round(size_est / rng.uniform(35, 90))))
            for t, period in enumerate(out_months):
                reach = 0.55 + 0.2 * t / len(out_months)
                contacted = int(rng.binomial(size_est, reach))
                req = size_est * 30
                reported = int(rng.poisson(size_est * 0.01))
                made = int(rng.poisson(contacted * 0.1))
                out_rows.append(
                    {
                        "site_id": site,
                        "organisation_id": org,
                        "district": district,
                        "period": period,
                        "kp_group": g,
                        "size_estimate": size_est,
                        "individuals_contacted": contacted,
                        "outreach_workers": workers,
                        "condoms_distributed": int(req * rng.uniform(0.6, 1.1)),
                        "condoms_required": req,
                        "lubricants_distributed": int(size_est * 15 * rng.uniform(0.5, 1.0)),
                        "lubricants_required": size_est * 15,
                        "needles_distributed": int(size_est * 20 * rng.uniform(0.5, 1.0))
                        if g == "pwud"
                        else None,
                        "needles_required": size_est * 20 if g == "pwud" else None,
                        "referrals_made": made,
                        "referrals_completed": int(rng.binomial(made, 0.6)),
                        "dic_visits": int(rng.poisson(size_est * 0.2)),
                        "violence_reported": reported,
                        "violence_responded_24h": int(rng.binomial(reported, 0.7)),
                    }
                )
    outreach = coerce(pd.DataFrame(out_rows), "outreach")

    clean = {
        "facilities": coerce(facilities_df, "facilities"),
        "organisations": organisations,
        "interviews": interviews,
        "observations": observations,
        "issues": issues,
        "routine": routine,
        "outreach": outreach,
    }

    # ---------------------------------------------------------------- truth
    cohorts = {w: rounds[s] for w, s in enumerate(wave_start_idx)}
    fac_round = pd.DataFrame({"f": f_idx, "r": r_idx, "dose": dose})
    treated_rows = dose > 0

    def att_table(name: str, diff: np.ndarray, weight: np.ndarray | None = None) -> dict[str, Any]:
        w = np.ones(n) if weight is None else weight
        sel = treated_rows & (w > 0)
        frame = pd.DataFrame(
            {
                "cohort": np.array([cohorts[int(a)] for a in np.maximum(arm[f_idx[sel]], 0)]),
                "round": np.array(rounds)[r_idx[sel]],
                "event_time": e_time[sel],
                "diff": diff[sel],
                "w": w[sel],
            }
        )
        frame["wd"] = frame["diff"] * frame["w"]
        by = frame.groupby(["cohort", "round"], sort=True)[["wd", "w"]].sum()
        by_e = frame.groupby("event_time", sort=True)[["wd", "w"]].sum()
        return {
            "overall": float(frame["wd"].sum() / frame["w"].sum()),
            "by_event_time": {
                int(e): float(wd / w)
                for e, wd, w in zip(by_e.index, by_e["wd"], by_e["w"], strict=True)
            },
            "by_cohort_round": [
                {"cohort": c, "round": r, "att": float(wd / w)}
                for (c, r), wd, w in zip(by.index, by["wd"], by["w"], strict=True)
            ],
        }

    def ord_share(eta: np.ndarray) -> np.ndarray:  # P(answer >= 4) = P(latent > cuts[2])
        return _expit(eta - cuts[2])

    def ord_mean(eta: np.ndarray) -> np.ndarray:
        cdf = _expit(cuts[None, :] - eta[:, None])  # P(latent <= c_k)
        mean: np.ndarray = 5.0 - cdf.sum(axis=1)
        return mean

    truth: dict[str, Any] = {
        "country": code,
        "seed": spec.seed,
        "description": "Planted CLM effects; ATTs are on each indicator's scale, averaged over treated interviews / facility-months",
        "design": {
            "rounds": rounds,
            "waves": {cohorts[w]: int((arm == w).sum()) for w in range(spec.waves)},
            "comparison_facilities": int((arm < 0).sum()),
            "ramp": f"min(1, (event_time + 1) / {RAMP_ROUNDS})",
            "wave_multiplier": "max(0.25, 1 - 0.25 * wave)  (wave 0 = first cohort)",
            "facility_random_effect_sd_logit": 0.5,
            "icc_logit_approx": round(0.25 / (0.25 + np.pi**2 / 3), 3),
            "secular_trend_wait_per_round": _TRENDS["wait_per_round"],
            "as_of": str(pd.Timestamp(cutoff).date()),
        },
        "effects": {k: dict(v) for k, v in EFFECTS.items()},
        "att": {
            # CLM's effect includes what it achieves through the chain (resolved problems)
            "wait_time_mean": att_table("wait", mu_c - mu0),
            "medicine_stockout_experienced": att_table(
                "stock", (1 - ga_pc) - (1 - ga_p0), on_art.astype(float)
            ),
            "vl_result_received": att_table("vl", vr_p1 - vr_p0, on_art.astype(float)),
            "confidentiality_breach": att_table("breach", br_pc - br_p0),
            "treated_with_respect": att_table("respect", ord_share(rs_eta1c) - ord_share(rs_eta0)),
            "satisfaction_mean": att_table("satisfaction", ord_mean(sa_eta1) - ord_mean(sa_eta0)),
            "multi_month_dispensing": {"overall": 0.0},
            "denied_service": {"overall": 0.0},
        },
        "issues": {
            "resolution_weibull_shape": weibull_shape,
            "median_days_by_category": cat_median,
            "median_days_note": "for issues with an agreed action; without one, times are "
            f"{CHAIN['slower_without_action']:g} times longer (see chain)",
            "high_severity_factor": 0.8,
            "n_issues": int(n_i),
            "n_open": int((~is_resolved).sum()),
        },
        "observations": {
            "arv_stockout_att": float(np.mean((arv_p1 - arv_p0)[obs_dose > 0]))
            if (obs_dose > 0).any()
            else 0.0,
            "note": "visits exist only after CLM starts: the effect shows as a decline over event time",
        },
        "routine": {
            "viral_suppression_att": float(np.mean((supp_p1 - supp_p0 + truth_change)[r_dose > 0]))
            if (r_dose > 0).any()
            else 0.0,
            "interruption_rate_ratio_full": float(np.exp(EFFECTS["interruptions"]["full"])),
        },
        "organisations_community_led": org_truth,
        "chain": _chain_truth(
            clm_cells=(arm[:, None] >= 0) & (cell_r >= start_idx[:, None]),
            meeting_p=meeting_p,
            issue_cell=(obs_f[iss_obs], obs_r[iss_obs]),
            resolve_gain=_resolution_gain(
                cutoff, identified, scale, weibull_shape, CHAIN["slower_without_action"]
            ),
            service_effects={
                "medicine_stockout_experienced": (
                    -h * (1 - ga_p1),
                    on_art,
                ),
                "wait_time_mean": (
                    np.full(n, -CHAIN_SERVICE_LINKS["wait_time_mean"]["size"]),
                    answered["wait_minutes"],
                ),
                "treated_with_respect": (
                    ord_share(rs_eta1 + kappa) - ord_share(rs_eta1),
                    answered["treated_with_respect"],
                ),
                "confidentiality_breach": (
                    _expit(np.log(br_p1 / (1 - br_p1)) - omega) - br_p1,
                    answered["confidentiality_breach"],
                ),
            },
            s_prev=s_prev,
            rows=(f_idx, r_idx),
            shape=(n_f, spec.rounds),
            clipped=clipped,
        ),
    }
    del fac_round

    raw, faults = _raw_exports(code, clean, rng, cutoff, fac_ids)
    truth["faults"] = faults
    districts = {
        "type": "FeatureCollection",
        "name": f"{code} districts (fictional)",
        "features": [
            {
                "type": "Feature",
                "properties": {"district": district_names[i], "region": region_of[i]},
                "geometry": json.loads(json.dumps(p.__geo_interface__)),
            }
            for i, p in enumerate(polys)
        ],
    }
    return DemoCountry(code=code, clean=clean, raw=raw, truth=truth, districts=districts)


def _resolution_gain(
    cutoff: Any, identified: np.ndarray, scale: np.ndarray, shape: float, slower: float
) -> np.ndarray:
    """Per issue: P(resolved by the cutoff | action agreed) − P(resolved | none agreed).

    Resolution times are Weibull with the issue's scale (``slower`` times longer without an
    agreed action); an issue identified ``T`` whole days before the cutoff is resolved when its
    (whole-day) time is at most ``T``.
    """
    import numpy as np

    elapsed = np.asarray(np.datetime64(cutoff, "ns") - identified)
    days = (elapsed // np.timedelta64(1, "D")).astype(float)
    days = np.maximum(days, 0.0)
    with_action = 1 - np.exp(-((days / scale) ** shape))
    without = 1 - np.exp(-((days / (slower * scale)) ** shape))
    gain: np.ndarray = with_action - without
    return gain


def _chain_truth(
    *,
    clm_cells: np.ndarray,
    meeting_p: np.ndarray,
    issue_cell: tuple[np.ndarray, np.ndarray],
    resolve_gain: np.ndarray,
    service_effects: dict[str, tuple[np.ndarray, np.ndarray]],
    s_prev: dict[str, np.ndarray],
    rows: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, int],
    clipped: int,
) -> dict[str, Any]:
    """The ``chain`` block of truth.yaml: every planted link with its true size.

    Sizes are on the indicators' own scales, per unit of the upstream indicator (a share goes
    from 0 to 1; minutes per minute). Links whose effect differs between clients or issues
    (``exact: false``) carry the average over the facility-rounds where the upstream is
    measured — the quantity a facility and round fixed-effects regression estimates.
    """
    import numpy as np

    def cell_average(effect: np.ndarray, cell: tuple[np.ndarray, np.ndarray]) -> float:
        total = np.zeros(shape)
        count = np.zeros(shape)
        np.add.at(total, cell, effect)
        np.add.at(count, cell, 1.0)
        used = count > 0
        return float(np.mean(total[used] / count[used])) if used.any() else float("nan")

    p_agree = CHAIN["action_agreed_probability"]
    links: list[dict[str, Any]] = [
        {
            "upstream": "feedback_meetings_held",
            "downstream": "issues_per_facility_round",
            "where": None,
            "lag": 0,
            "method": "dose_response",
            "truth": float(CHAIN["extra_issues_per_meeting"]),
            "unit": "issues per visit, per unit share of visits with a feedback meeting",
            "exact": True,
        },
        {
            "upstream": "feedback_meetings_held",
            "downstream": "issues_action_agreed",
            "where": None,
            "lag": 0,
            "method": "dose_response",
            "truth": float(p_agree["with_meeting"] - p_agree["without_meeting"]),
            "unit": "share of issues with an agreed action, per unit share of visits with a meeting",
            "exact": True,
        },
        {
            "upstream": "issues_action_agreed",
            "downstream": "issues_resolved",
            "where": None,
            "lag": 0,
            "method": "within_facility",
            "truth": cell_average(resolve_gain, issue_cell),
            "unit": "share resolved by the extraction date, per unit share with an agreed action",
            "exact": False,
        },
    ]
    f_idx, r_idx = rows
    for downstream, link in CHAIN_SERVICE_LINKS.items():
        effect, scope = service_effects[downstream]
        use = scope & np.isfinite(s_prev[downstream])
        links.append(
            {
                "upstream": "issues_resolved",
                "downstream": downstream,
                "where": f"category == '{link['category']}'",
                "lag": 1,
                "method": "within_facility",
                "truth": cell_average(effect[use], (f_idx[use], r_idx[use])),
                "unit": "change in the indicator per unit share of the category's issues "
                "resolved in the previous round",
                "exact": downstream == "wait_time_mean",
            }
        )
    for (upstream, downstream), link in CHAIN_IMPACT_LINKS.items():
        links.append(
            {
                "upstream": upstream,
                "downstream": downstream,
                "where": None,
                "lag": 1,
                "method": "within_facility",
                "truth": float(link["size"]),
                "unit": "per person-month on ART"
                if downstream == "treatment_interruption"
                else "suppression probability",
                "exact": True,
            }
        )
    for item in links:
        item["broken"] = (item["upstream"], item["downstream"]) == BROKEN_LINK
    clm = clm_cells.sum()
    return {
        "description": "Planted results chain: feedback meetings (monitoring intensity) → "
        "issues identified and acted on → resolved → services the next round → routine "
        "outcomes the next quarter. One link is planted broken (no effect).",
        "monitoring_intensity": {
            "feedback_meeting_probability": list(CHAIN["feedback_meeting_probability"]),
            "mean_over_clm_facility_rounds": float(
                np.sum(np.where(clm_cells, meeting_p[:, None], 0.0)) / clm
            )
            if clm
            else float("nan"),
        },
        "extra_issues_per_meeting": CHAIN["extra_issues_per_meeting"],
        "action_agreed_probability": dict(CHAIN["action_agreed_probability"]),
        "slower_without_action": CHAIN["slower_without_action"],
        "service_links": {k: dict(v) for k, v in CHAIN_SERVICE_LINKS.items()},
        "impact_links": [
            {"upstream": u, "downstream": d, **v} for (u, d), v in CHAIN_IMPACT_LINKS.items()
        ],
        "broken_link": {"upstream": BROKEN_LINK[0], "downstream": BROKEN_LINK[1]},
        "links": links,
        "clipped_probabilities": clipped,
    }


def _raw_exports(
    code: str,
    clean: dict[str, pd.DataFrame],
    rng: np.random.Generator,
    cutoff: Any,
    fac_ids: list[str],
) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """Raw tables: personal data added to interviews, faulty extra rows appended."""
    import numpy as np
    import pandas as pd

    raw = {k: v.copy() for k, v in clean.items()}
    iv = raw["interviews"]
    n = len(iv)
    first = np.array(_FIRST)[rng.integers(0, len(_FIRST), n)]
    last = np.array(_LAST)[rng.integers(0, len(_LAST), n)]
    iv["client_name"] = pd.Series(first, dtype="string") + " " + pd.Series(last, dtype="string")
    iv["phone_number"] = pd.Series(
        np.char.add("+999 7", np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8)),
        dtype="string",
    )
    dob = iv["date"] - pd.to_timedelta(
        iv["age"].astype("float64") * 365.25 + rng.integers(1, 360, n), unit="D"
    )
    iv["date_of_birth"] = dob.dt.strftime("%Y-%m-%d")
    iv["free_text"] = pd.Series(
        np.array(_COMMENTS)[rng.integers(0, len(_COMMENTS), n)], dtype="string"
    )
    iv.loc[rng.random(n) < 0.5, "free_text"] = pd.NA
    # canaries: the first rows, every time
    for i, name in enumerate(CANARY_NAMES):
        iv.loc[i, "client_name"] = name
    for i, phone in enumerate(CANARY_PHONES):
        iv.loc[i, "phone_number"] = phone
    for i, dob_text in enumerate(CANARY_BIRTH_DATES):
        iv.loc[i, "date_of_birth"] = dob_text
    iv.loc[0, "free_text"] = CANARY_FREE_TEXT[0]

    faults: list[dict[str, Any]] = []
    extra_rows: list[pd.DataFrame] = []
    n_each = max(2, n // 800)  # about 1% of rows in total
    counter = [0]

    def new_rows(k: int) -> pd.DataFrame:
        rows = iv.iloc[rng.choice(n, k, replace=False)].copy()
        return rows

    def fresh_id(rows: pd.DataFrame) -> pd.DataFrame:
        ids = []
        for _ in range(len(rows)):
            counter[0] += 1
            ids.append(f"{code}-E{counter[0]:06d}")
        rows["interview_id"] = ids
        return rows

    plan: list[tuple[str, str, Any]] = [
        ("wait_minutes", "range", -15.0),
        ("wait_minutes", "range", 2000.0),
        ("age", "range", 7),
        ("treated_with_respect", "allowed_values", 9),
        ("facility_id", "unknown_reference", f"{code}-F999"),
        ("facility_id", "not_null", pd.NA),  # the facility is required; answers are not
        ("date", "future_date", pd.Timestamp(cutoff) + pd.Timedelta(days=400)),
        ("round", "pattern", "2024-Q1"),
    ]
    for column, rule, value in plan:
        rows = fresh_id(new_rows(n_each))
        rows[column] = value if column != "age" else pd.array([value] * len(rows), dtype="Int64")
        extra_rows.append(rows)
        for rid in rows["interview_id"]:
            faults.append({"table": "interviews", "id": rid, "column": column, "rule": rule})
    # personal data typed into columns that are not personal: masked, the row quarantined
    for column, value in CANARY_MISPLACED.items():
        rows = fresh_id(new_rows(1))
        rows[column] = pd.Series([value], index=rows.index, dtype=object)
        extra_rows.append(rows)
        faults.append(
            {
                "table": "interviews",
                "id": rows["interview_id"].iloc[0],
                "column": column,
                "rule": "personal_data",
            }
        )
    dups = new_rows(n_each)  # exact duplicates (same interview id): the copy is refused
    extra_rows.append(dups)
    for rid in dups["interview_id"]:
        faults.append(
            {"table": "interviews", "id": rid, "column": "interview_id", "rule": "duplicate_key"}
        )
    # Spread the faulty rows through the file; a duplicate always comes after its original.
    extras = pd.concat(extra_rows, ignore_index=True)
    pos_of = pd.Series(np.arange(n, dtype=float), index=iv["interview_id"].to_numpy())
    keys = rng.uniform(0, n, len(extras))
    is_dup = extras["interview_id"].isin(set(dups["interview_id"])).to_numpy()
    orig = pos_of.reindex(extras["interview_id"].to_numpy()).to_numpy()
    keys[is_dup] = orig[is_dup] + 0.5 + rng.uniform(0, 1, is_dup.sum()) * (n - orig[is_dup])
    allrows = pd.concat([iv, extras], ignore_index=True)
    order = np.argsort(np.concatenate([np.arange(n, dtype=float), keys]), kind="stable")
    allrows = allrows.iloc[order].reset_index(drop=True)
    seen: set[str] = set()
    row_of: dict[tuple[str, str], int] = {}
    for pos, rid in enumerate(allrows["interview_id"]):
        row_of.setdefault((rid, "dup" if rid in seen else "first"), pos + 1)
        seen.add(rid)
    for f in faults:  # the line of the CSV file, as a spreadsheet numbers it (header = 1)
        f["row"] = row_of[(f["id"], "dup" if f["rule"] == "duplicate_key" else "first")] + 1
    raw["interviews"] = allrows

    rt = raw["routine"]
    bad = rt.iloc[rng.choice(len(rt), 3, replace=False)].copy()
    bad["vl_suppressed"] = bad["vl_tested"] + 5
    # give each inconsistent row a free (facility, month) slot: a month before the series
    first_month = rt["period"].min()
    y, mo = int(first_month[:4]), int(first_month[5:7])
    bad["period"] = [f"{y - 1}-{mo:02d}"] * len(bad)
    extra_fac = rng.choice(fac_ids, len(bad), replace=False)
    bad["facility_id"] = extra_fac
    raw["routine"] = pd.concat([rt, bad], ignore_index=True)
    for pos, (_, row) in enumerate(bad.iterrows()):
        faults.append(
            {
                "table": "routine",
                "id": f"{row['facility_id']}|{row['period']}",
                "column": "vl_suppressed",
                "rule": "inconsistent",
                "row": len(rt) + pos + 2,
            }
        )
    return raw, faults


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map({True: "true", False: "false"}).astype("string")
        elif pd.api.types.is_object_dtype(out[col]):  # a column with a planted text value
            out[col] = out[col].map(
                lambda v: {True: "true", False: "false"}.get(v, v) if isinstance(v, bool) else v
            )
    return out


def demo_countries() -> list[str]:
    """Codes of the countries whose parameters have a ``demo:`` block."""
    return [c for c in list_countries() if load_country(c).is_demo]


def write_demo(
    codes: list[str] | None = None,
    facilities: int | None = None,
    interviews_per_round: int | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Generate demo countries and write their raw exports to ``data/raw/<code>/``.

    Parameters
    ----------
    codes
        Countries to write; default every demo country.
    facilities, interviews_per_round
        Size overrides (benchmarks).
    force
        Rewrite even when the folder already holds the same generation (same ``truth.yaml``
        fingerprint); by default an up-to-date folder is left alone.

    Returns
    -------
    dict
        Folder written, by country code.
    """
    import hashlib

    import yaml

    out: dict[str, Path] = {}
    for code in codes or demo_countries():
        params = load_country(code)
        fingerprint = hashlib.sha256(
            json.dumps(
                [
                    params.model_dump(mode="json"),
                    facilities,
                    interviews_per_round,
                    _GENERATOR_VERSION,
                ],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:16]
        folder = raw_dir(code)
        marker = folder / "truth.yaml"
        if not force and marker.is_file():
            # only the first line, where the fingerprint is written: no YAML parsing (truth.yaml
            # of a large benchmark country outgrows the limits of the parameter-file loader)
            try:
                with open(marker, encoding="utf-8") as f:
                    key, _, value = f.readline().partition(":")
                    if key == "fingerprint" and value.strip().strip("'\"") == fingerprint:
                        out[code] = folder
                        continue
            except (OSError, UnicodeDecodeError):
                pass  # unreadable: regenerate
        demo = generate_country(code, params, facilities, interviews_per_round)
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in demo.raw.items():
            _csv_frame(frame).to_csv(folder / f"{name}.csv", index=False)
        (folder / "districts.geojson").write_text(json.dumps(demo.districts, separators=(",", ":")))
        truth = {"fingerprint": fingerprint, **demo.truth}
        marker.write_text(yaml.safe_dump(truth, sort_keys=False, allow_unicode=True))
        out[code] = folder
    return out


#: Bump when the generator's output changes, so `write_demo` regenerates stale folders.
_GENERATOR_VERSION = 5
