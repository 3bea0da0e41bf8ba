"""Danish labels for the vocabularies (skadestue.vocab) used on maps and in reports."""

from __future__ import annotations

ROAD_USER_DA = {
    "pedestrian": "Fodgænger",
    "cyclist": "Cyklist",
    "e_bike": "Elcykel",
    "moped": "Knallert",
    "motorcycle": "Motorcykel",
    "car": "Bil",
    "van": "Varebil",
    "truck": "Lastbil",
    "bus": "Bus",
    "other": "Andet/ukendt",
    "unknown": "Andet/ukendt",
}
#: The road-user count columns of the hotspot layers, in display order.
ROAD_USER_COLUMNS = {
    "n_pedestrian": "fodgænger", "n_cyclist": "cyklist", "n_e_bike": "elcykel", "n_moped": "knallert",
    "n_motorcycle": "motorcykel", "n_car": "bil", "n_van": "varebil", "n_truck": "lastbil", "n_bus": "bus",
    "n_other": "andet",
}
SEVERITY_DA = {"killed": "Dræbt", "serious": "Alvorligt tilskadekommen", "slight": "Lettere tilskadekommen",
               "unknown": "Ukendt skadesgrad"}
AGE_BANDS = ("0-14", "15-17", "18-24", "25-44", "45-64", "65-74", "75+", "unknown")
AGE_BAND_DA = {a: ("Ukendt" if a == "unknown" else a.replace("-", "–") + " år") for a in AGE_BANDS}
AGE_BAND_DA["75+"] = "75+ år"
WEEKDAYS_DA = ("Mandag", "Tirsdag", "Onsdag", "Torsdag", "Fredag", "Lørdag", "Søndag")
