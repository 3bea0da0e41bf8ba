"""The published layers, their column allow-lists and their descriptions.

A published layer may hold only the columns listed here: no CPR (not even hashed), no
pseudonym, no names of people, no free text, no birth date, no hospital contact id. A mart
column not on the list stops the publication (``check_columns``) instead of leaking.
"""

from __future__ import annotations

PERIOD_COLUMNS = ("period_start", "period_end", "period_type")
SEVERITY_COUNTS = ("n_killed", "n_serious", "n_slight", "n_unknown")
SOURCE_COUNTS = ("n_police", "n_er_only")
ROAD_USER_COUNTS = (
    "n_pedestrian", "n_cyclist", "n_e_bike", "n_moped", "n_motorcycle",
    "n_car", "n_van", "n_truck", "n_bus", "n_other",
)
#: Count columns common to every hotspot layer.
COUNT_COLUMNS = ("n_accidents", "n_casualties", *SEVERITY_COUNTS, *SOURCE_COUNTS, *ROAD_USER_COUNTS)
_HOTSPOT_TAIL = ("score", "rule_flag")
#: Observed versus expected (empirical Bayes, skadestue.hotspots.expected) on junctions and stretches.
EXPECTED_COLUMNS = (
    "road_class", "eb_accidents", "excess_accidents", "excess_score", "excess_p", "excess_q", "excess_flag",
)

LAYER_COLUMNS: dict[str, tuple[str, ...]] = {
    "hotspot_grid": (
        "cell_id", "cell_size_m", "kommunekode", *PERIOD_COLUMNS, *COUNT_COLUMNS, *_HOTSPOT_TAIL,
        "gi_z", "gi_p", "gi_q", "gi_hot", "rank_in_kommune", "geom",
    ),
    "hotspot_junction": (
        "junction_id", "vejnavne", "kommunekode", *PERIOD_COLUMNS, *COUNT_COLUMNS, *_HOTSPOT_TAIL,
        "expected_accidents", "obs_exp_ratio", "poisson_p", *EXPECTED_COLUMNS, "rank_in_kommune", "geom",
    ),
    "hotspot_segment": (
        "kommunekode", "vejkode", "vejnavn", "window_m", "from_m", "to_m", *PERIOD_COLUMNS,
        *COUNT_COLUMNS, "score", "n_accidents_stretch", "rule_flag", "expected_accidents", "obs_exp_ratio",
        *EXPECTED_COLUMNS, "rank_in_kommune", "geom",
    ),
    "casualty_point": (
        "casualty_id", "injury_date", "injury_hour", "road_user", "counterpart", "severity",
        "age_band", "sex", "source", "kommunekode", "x", "y", "geom",
    ),
}
LAYER_COLUMNS["plan_coverage"] = (
    "row_type", "layer", "hotspot_key", "junction_id", "cell_id", "vejkode", "window_m", "from_m", "to_m",
    "kommunekode", "period_start", "period_end", "n_accidents", "score", "rank_in_kommune",
    "tiltag_id", "tiltag_navn", "tiltag_type", "tiltag_status", "tiltag_year", "distance_m", "gap", "buffer_m",
    "years_before", "before_start", "before_end", "after_start", "after_end",
    "n_casualties_before", "n_casualties_after", "n_serious_before", "n_serious_after",
    "n_er_only_before", "n_er_only_after", "change_pct", "caveat", "geom",
)
HOTSPOT_LAYERS = ("hotspot_grid", "hotspot_junction", "hotspot_segment")
#: Added to each hotspot layer of the lokalråd tier by disclosure control.
SUPPRESSION_COLUMNS = ("suppressed", "suppressed_columns")
#: Count columns per layer that disclosure control looks at.
LAYER_COUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "hotspot_grid": COUNT_COLUMNS,
    "hotspot_junction": COUNT_COLUMNS,
    "hotspot_segment": (*COUNT_COLUMNS, "n_accidents_stretch"),
}

DESCRIPTIONS: dict[str, str] = {
    "hotspot_grid": (
        "Det Danske Kvadratnet cells (100 m and 1 km) x period; one row per kommune of the "
        "casualties in the cell. score = severity-weighted casualties; rule_flag = at least "
        "{rule_min} accidents in the cell over the analysis window; gi_z/gi_p = Getis-Ord Gi* "
        "(100 m cells, window period, distance band {gi_band} m, permutation p), NULL otherwise; "
        "gi_q = Benjamini-Hochberg q of the normal p over the cells tested, gi_hot = gi_z > 0 and "
        "gi_q < 0.05."
    ),
    "hotspot_junction": (
        "Road junctions x period; each casualty counted at its nearest junction within "
        "{radius} m. rule_flag = at least {rule_min} accidents over the analysis window; "
        "expected_accidents = accidents expected at a comparable junction (road_class: the road "
        "classes meeting and the legs) in the kommune; eb_accidents = empirical Bayes estimate; "
        "excess_accidents = eb_accidents - expected_accidents; excess_score = excess x score per "
        "accident; excess_p = P(X >= n_accidents), X negative binomial; excess_q = its "
        "Benjamini-Hochberg q; excess_flag (sort plet) = excess_q < 0.05 and at least {rule_min} "
        "accidents; rank_in_kommune: flagged first, then by excess_score, then score; "
        "poisson_p = P(X >= n_accidents), X Poisson(expected_accidents)."
    ),
    "hotspot_segment": (
        "Road stretches in fixed windows (from_m/to_m along the street) x period; casualties "
        "snapped to the nearest street within {snap} m, junction casualties included. "
        "rule_flag = at least {rule_min} accidents within {stretch} m (n_accidents_stretch, "
        "window period). expected_accidents/eb_accidents/excess_*: as for junctions, against "
        "windows of the same length on streets of the same road_class (VEJKLASSE) in the kommune; "
        "rank_in_kommune per window length: flagged first, then excess_score, then score."
    ),
    "plan_coverage": (
        "The traffic-safety plan against the hotspots (engineers' tier only). row_type "
        "'hotspot': a junction or shortest road window with excess_flag, or with rule_flag among "
        "the kommune's top 10, or a 100 m cell with gi_hot and rule_flag among the top 10 "
        "(analysis window), with the nearest plan measure within buffer_m (tiltag_id NULL and gap = true: no measure, a gap in the plan). row_type "
        "'measure': a measure done (status udført) in tiltag_year with the casualties within "
        "buffer_m in up to 3 full years before and after it (the building year left out); read "
        "the caveat on regression to the mean before concluding."
    ),
    "casualty_point": (
        "One row per casualty (engineers' tier only): date, hour, road user, counterpart, "
        "severity, age band, sex, source, x/y; geom NULL when the casualty was not placed."
    ),
}


class UnexpectedColumnError(RuntimeError):
    """A layer holds a column that is not on its allow-list: publication stops."""


def allowed_columns(layer: str, lokalraad: bool = False) -> tuple[str, ...]:
    """The allow-list of ``layer`` in the given tier."""
    columns = LAYER_COLUMNS[layer]
    return (*columns, *SUPPRESSION_COLUMNS) if lokalraad else columns


def check_columns(layer: str, columns: list[str] | tuple[str, ...], lokalraad: bool = False) -> None:
    """Raise UnexpectedColumnError unless ``columns`` are exactly those allowed for ``layer``."""
    allowed = allowed_columns(layer, lokalraad)
    unexpected = [c for c in columns if c not in allowed]
    if unexpected:
        raise UnexpectedColumnError(
            f"layer {layer!r} holds columns that are not on its publication allow-list: "
            f"{unexpected}. Published layers must not carry CPR, pseudonyms, names, free text, "
            "birth dates or contact ids; if the column is safe, add it to "
            "skadestue.publish.layers.LAYER_COLUMNS."
        )
    missing = [c for c in allowed if c not in columns and c != "geom"]
    if missing:
        raise UnexpectedColumnError(f"layer {layer!r} lacks the columns {missing}")

#: Each layer's key (outputs.md §2), also its published row order.
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "hotspot_grid": ("cell_id", "kommunekode", "period_start", "period_end"),
    "hotspot_junction": ("junction_id", "period_start", "period_end"),
    "hotspot_segment": ("kommunekode", "vejkode", "window_m", "from_m", "period_start", "period_end"),
    "casualty_point": ("casualty_id",),
    "plan_coverage": ("row_type", "layer", "hotspot_key", "tiltag_id"),
}
