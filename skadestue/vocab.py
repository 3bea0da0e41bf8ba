"""The shared vocabularies: road users, counterparts, severities, age bands, and the code lists
of both sources that map onto them (inputs.md §1-2, outputs.md §1).

One place, so the ingest, the demo generator, the linkage and the hotspot layers agree.
"""

from __future__ import annotations

ROAD_USERS = (
    "pedestrian", "cyclist", "e_bike", "moped", "motorcycle",
    "car", "van", "truck", "bus", "other", "unknown",
)
#: Counterparts use the road users plus these two.
COUNTERPARTS = ROAD_USERS + ("none", "fixed_object")
SEVERITIES = ("killed", "serious", "slight", "unknown")
#: Police persons may also be uninjured (they are not casualties).
PERSON_SEVERITIES = SEVERITIES + ("uninjured",)
SEXES = ("M", "K")
GEOCODE_QUALITIES = ("A", "B", "C", "police", "none")
SOURCES = ("police", "er", "both")

#: Emergency-ward `transportmiddel` / `modpart` codes (LPR C_EPART / C_EMODPART).
ER_TRANSPORT_CODES: dict[str, str] = {
    "1": "pedestrian",
    "2": "cyclist",
    "3": "moped",
    "4": "motorcycle",
    "5": "car",
    "6": "van",
    "7": "truck",  # "lastbil/bus": the code does not tell them apart
    "8": "other",
    "9": "unknown",
}
#: `modpart` 0 = no counterpart (single-party accident).
ER_COUNTERPART_CODES: dict[str, str] = {"0": "none", **ER_TRANSPORT_CODES}

#: Danish free-text words for road users as wards type them (lower case, normalised).
ER_TRANSPORT_TEXT: dict[str, str] = {
    "til fods": "pedestrian", "fodgænger": "pedestrian", "fodgaenger": "pedestrian", "gående": "pedestrian",
    "cykel": "cyclist", "cyklist": "cyclist", "alm. cykel": "cyclist", "ladcykel": "cyclist",
    "el-cykel": "e_bike", "elcykel": "e_bike", "el cykel": "e_bike", "speed pedelec": "e_bike",
    "knallert": "moped", "knallert 30": "moped", "knallert 45": "moped", "scooter 30": "moped",
    "motorcykel": "motorcycle", "mc": "motorcycle", "scooter": "motorcycle", "motorcykel/scooter": "motorcycle",
    "personbil": "car", "bil": "car", "taxi": "car",
    "varebil": "van", "varevogn": "van",
    "lastbil": "truck", "lastvogn": "truck", "lastbil/bus": "truck",
    "bus": "bus", "rutebus": "bus",
    "traktor": "other", "anden": "other", "andet": "other", "løbehjul": "other", "el-løbehjul": "other",
    "uoplyst": "unknown", "ukendt": "unknown",
    "ingen": "none", "ingen modpart": "none", "eneulykke": "none", "eneuheld": "none",
    "fast genstand": "fixed_object", "genstand": "fixed_object", "træ": "fixed_object",
    "dyr": "other",
}

#: Police TRANSPORTMIDDEL codes (VD/DST `transmid`).
POLICE_TRANSPORT_CODES: dict[int, str] = {
    11: "car", 12: "car", 13: "car",
    22: "van", 23: "van",
    31: "truck",
    34: "bus", 35: "bus",
    41: "motorcycle",
    42: "other",
    45: "moped", 51: "moped", 52: "moped",
    61: "cyclist",
    62: "e_bike",
    71: "pedestrian",
    80: "fixed_object",
    90: "none",
    99: "other",
}

#: Police SKADESGRAD -> severity.
POLICE_SKADESGRAD: dict[str, str] = {"D": "killed", "A": "serious", "L": "slight", "U": "uninjured"}

#: UHELDSART -> the accident's severity (the worst person's, as the police code it).
POLICE_UHELDSART: dict[str, str] = {
    "dødsuheld": "killed",
    "personskadeuheld": "serious",  # refined from the person counts when given
    "materielskadeuheld": "unknown",
    "ekstrauheld": "unknown",
}

#: Age bands used in every published layer (never the exact age or birth date).
AGE_BANDS = ("0-14", "15-17", "18-24", "25-44", "45-64", "65-74", "75+", "unknown")


def age_band_sql(col: str) -> str:
    """A SQL CASE expression mapping an integer age column to its age band."""
    return (
        f"CASE WHEN {col} IS NULL THEN 'unknown' "
        f"WHEN {col} < 15 THEN '0-14' WHEN {col} < 18 THEN '15-17' "
        f"WHEN {col} < 25 THEN '18-24' WHEN {col} < 45 THEN '25-44' "
        f"WHEN {col} < 65 THEN '45-64' WHEN {col} < 75 THEN '65-74' ELSE '75+' END"
    )


def road_user_sql_in(values: tuple[str, ...]) -> str:
    """`'a', 'b', ...` for a SQL IN list."""
    return ", ".join(f"'{v}'" for v in values)


# ER severity (outputs.md §1: "admitted with a fracture = serious"). Applied by the ingest:
#   killed  : afslutning = død
#   serious : any diagnosis (action or secondary) that is a fracture (DS?2*: DS02, DS12, DS22,
#             DS32, DS42, DS52, DS62, DS72, DS82, DS92), an intracranial injury other than plain
#             concussion (DS061-DS069), an injury of internal organs (DS26, DS27, DS36, DS37),
#             spinal cord (DS14, DS24, DS34), crushing/amputation (DS07, DS08, DS17, DS18, DS28,
#             DS38, DS47, DS48, DS57, DS58, DS67, DS68, DS77, DS78, DS87, DS88, DS97, DS98),
#             or afslutning = indlagt / overflyttet
#   slight  : any other injury diagnosis (DS*, DT*)
#   unknown : no usable diagnosis and not admitted
SERIOUS_DIAGNOSIS_REGEX = (
    r"^DS(\d2|06[1-9]|2[67]|3[67]|[123]4|0[78]|1[78]|2[8]|3[8]|4[78]|5[78]|6[78]|7[78]|8[78]|9[78])"
)
