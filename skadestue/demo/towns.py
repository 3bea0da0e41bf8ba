"""The fixed geography of the demo: real town centres, street names, rural roads, hotspots.

Town centres are the real ones (EPSG:25832, converted from lat/lon with pyproj and nudged a
few hundred metres inland where the coarse DAGI 1:500 000 coastline would cut the town).
Everything else (street layout, numbers, vejkoder) is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TownSpec:
    """One town: where it is, its postcode and how big a street grid it gets."""

    name: str
    kommunekode: str
    postnr: str
    postnrnavn: str
    x: float
    y: float
    n: int  # streets in each direction of the grid
    spacing: float  # metres between parallel streets
    weight: float  # population in thousands: share of the town's accidents
    ring: bool = False
    supplerendebynavn: str = ""
    #: Street names forced onto the grid, placed from the centre outwards.
    fixed_vertical: tuple[str, ...] = ()
    fixed_horizontal: tuple[str, ...] = ()
    #: Extra radial roads that lead out of the region (name, compass angle in degrees, 0 = east).
    dangling: tuple[tuple[str, float], ...] = ()


TOWNS: tuple[TownSpec, ...] = (
    TownSpec("Esbjerg", "0561", "6700", "Esbjerg", 465620, 6147100, 14, 150, 72, True,
             fixed_vertical=("Storegade", "Kongensgade", "Torvegade"),
             fixed_horizontal=("Jernbanegade", "Skolegade", "Englandsgade", "Havnegade")),
    TownSpec("Ribe", "0561", "6760", "Ribe", 484840, 6131320, 7, 140, 8.3, True,
             fixed_vertical=("Skt. Nicolaj Gade",)),
    TownSpec("Bramming", "0561", "6740", "Bramming", 481030, 6146360, 6, 140, 7),
    TownSpec("Haderslev", "0510", "6100", "Haderslev", 531090, 6122750, 10, 150, 22, True,
             fixed_vertical=("Gåskærgade", "Nørregade"), fixed_horizontal=("Bispebrovej", "Jomfrustien"),
             dangling=(("Christiansfeldvej", 80.0),)),
    TownSpec("Vojens", "0510", "6500", "Vojens", 519450, 6122210, 6, 140, 7.6),
    TownSpec("Sønderborg", "0540", "6400", "Sønderborg", 551050, 6085000, 10, 150, 27, True,
             fixed_vertical=("Perlegade",), fixed_horizontal=("Jernbanegade",),
             dangling=(("Augustenborg Landevej", 25.0),)),
    TownSpec("Gråsten", "0540", "6300", "Gråsten", 538340, 6086290, 5, 130, 4.2),
    TownSpec("Nordborg", "0540", "6430", "Nordborg", 547270, 6101390, 5, 140, 6),
    TownSpec("Tønder", "0550", "6270", "Tønder", 491480, 6087340, 7, 150, 7.5, True),
    TownSpec("Skærbæk", "0550", "6780", "Skærbæk", 485280, 6112180, 5, 130, 3),
    TownSpec("Nordby", "0563", "6720", "Fanø", 461850, 6144370, 4, 120, 2.8, supplerendebynavn="Nordby"),
    TownSpec("Sønderho", "0563", "6720", "Fanø", 466460, 6134310, 3, 110, 0.5, supplerendebynavn="Sønderho"),
    TownSpec("Varde", "0573", "6800", "Varde", 467320, 6164020, 8, 150, 14, True),
    TownSpec("Oksbøl", "0573", "6840", "Oksbøl", 454600, 6164800, 5, 130, 3),
    TownSpec("Vejen", "0575", "6600", "Vejen", 508720, 6148330, 7, 150, 10, True,
             fixed_vertical=("Storegade",), fixed_horizontal=("Jernbanegade",),
             dangling=(("Kolding Landevej", 5.0),)),
    TownSpec("Rødding", "0575", "6630", "Rødding", 503870, 6135520, 5, 130, 2.4),
    TownSpec("Brørup", "0575", "6650", "Brørup", 501070, 6148320, 5, 130, 4),
    TownSpec("Aabenraa", "0580", "6200", "Aabenraa", 526710, 6100050, 9, 150, 16, True,
             fixed_vertical=("H.P. Hanssens Gade", "Storegade"), fixed_horizontal=("Nygade", "Vestergade")),
    TownSpec("Rødekro", "0580", "6230", "Rødekro", 521460, 6102630, 5, 140, 6),
)

#: Generic street names. They repeat across towns and municipalities, as in reality.
STREET_POOL: tuple[str, ...] = (
    "Storegade", "Jernbanegade", "Kongensgade", "Vestergade", "Østergade", "Nørregade",
    "Søndergade", "Skolegade", "Kirkegade", "Torvegade", "Havnegade", "Stationsvej",
    "Skt. Nicolaj Gade", "Chr. IX's Vej", "Ådalen", "Æblehaven", "Møllevej", "Vestervej",
    "Østervej", "Nørrevej", "Søndervej", "Skovvej", "Engvej", "Birkevej", "Bøgevej", "Egevej",
    "Lindevej", "Kastanievej", "Rosenvej", "Markvej", "Industrivej", "Fabriksvej", "Idrætsvej",
    "Parkvej", "Solvej", "Grønnegade", "Nygade", "Smedegade", "Præstegårdsvej", "Kirkevej",
    "Mejerivej", "Slotsgade", "Strandvejen", "Frederiksgade", "Dronningensgade",
    "Skt. Jørgens Gade", "H.C. Andersens Vej", "Fælledvej", "Ørstedsvej", "Åvej", "Ålykkevej",
    "Højvangen", "Bakkevej", "Tværgade", "Kløvervej", "Chr. Winthers Vej", "Sankt Peders Vej",
    "Jernbanevej", "Ahornvej", "Tjørnevej", "Fasanvej", "Lærkevej", "Vibevej", "Mågevej",
    "Gl. Kongevej", "Kærvej", "Ågade", "Søvej", "Bredgade", "Langgade",
)

RING_NAME = "Ringvejen"

#: Rural roads between towns (from, to, name). The road leaves ``from`` by a radial of the
#: same name (route numbers get "<to>vej" instead); it enters ``to`` by "<from>vej".
RURAL_ROADS: tuple[tuple[str, str, str], ...] = (
    ("Esbjerg", "Ribe", "Ribevej"),
    ("Esbjerg", "Varde", "Vardevej"),
    ("Esbjerg", "Bramming", "Kolding Landevej"),
    ("Bramming", "Brørup", "Kolding Landevej"),
    ("Brørup", "Vejen", "Kolding Landevej"),
    ("Varde", "Oksbøl", "Oksbølvej"),
    ("Ribe", "Skærbæk", "Rute 11"),
    ("Skærbæk", "Tønder", "Rute 11"),
    ("Ribe", "Rødding", "Røddingvej"),
    ("Vejen", "Rødding", "Røddingvej"),
    ("Rødding", "Vojens", "Haderslevvej"),
    ("Vojens", "Haderslev", "Haderslevvej"),
    ("Aabenraa", "Haderslev", "Haderslevvej"),
    ("Aabenraa", "Rødekro", "Rødekrovej"),
    ("Rødekro", "Tønder", "Tøndervej"),
    ("Aabenraa", "Gråsten", "Gråstenvej"),
    ("Gråsten", "Sønderborg", "Sønderborgvej"),
    ("Sønderborg", "Nordborg", "Nordborgvej"),
    ("Nordby", "Sønderho", "Sønderho Landevej"),
)

#: Rural roads that are through routes (VEJKLASSE Trafikvej-Gennemfart).
THROUGH_ROUTES = frozenset({"Rute 11", "Kolding Landevej", "Haderslevvej", "Ribevej"})

#: Villages that appear as supplerendebynavn on rural addresses, per kommune.
VILLAGES: dict[str, tuple[str, ...]] = {
    "0561": ("Gredstedbro", "Vester Vedsted", "Sejstrup", "Darum"),
    "0510": ("Hammelev", "Over Jerstal", "Sommersted"),
    "0540": ("Avnbøl", "Ulkebøl", "Havnbjerg"),
    "0550": ("Bredebro", "Visby", "Døstrup"),
    "0563": ("Rindby",),
    "0573": ("Alslev", "Janderup", "Starup"),
    "0575": ("Askov", "Jels", "Gesten"),
    "0580": ("Bolderslev", "Genner", "Hjordkær"),
}

#: Landmarks the wards name instead of an address (name, town, offset from the centre as a
#: fraction of the grid's half-width). "Bilka" and "Domkirken" exist in two towns on purpose.
LANDMARKS: tuple[tuple[str, str, float, float], ...] = (
    ("Bilka", "Esbjerg", 0.9, -0.8),
    ("Banegården", "Esbjerg", -0.1, -0.3),
    ("Sydvestjysk Sygehus", "Esbjerg", 0.6, 0.7),
    ("Esbjerg Stadion", "Esbjerg", -0.7, 0.8),
    ("Bilka", "Sønderborg", 0.8, 0.7),
    ("Borgen", "Sønderborg", 0.1, -0.2),
    ("Sønderborg Slot", "Sønderborg", -0.5, -0.6),
    ("Domkirken", "Haderslev", 0.0, 0.2),
    ("Domkirken", "Ribe", 0.1, 0.0),
    ("Sygehus Sønderjylland", "Aabenraa", 0.7, 0.6),
    ("Brundlund Slot", "Aabenraa", -0.6, -0.5),
    ("Vejen Idrætscenter", "Vejen", -0.6, 0.5),
    ("Festivalpladsen", "Tønder", 0.6, -0.6),
    ("Varde Å", "Varde", -0.4, -0.7),
)


@dataclass(frozen=True)
class HotspotSpec:
    """A planted hotspot: a junction of two named streets, or a stretch of one road."""

    name: str
    kind: str  # junction | stretch
    town: str
    roads: tuple[str, ...]
    casualties_per_5y: int  # at scale 1
    roundabout: bool = False
    #: For a stretch: metres along the street from where it starts, and its length.
    stretch_from_m: float = 0.0
    stretch_length_m: float = 0.0


HOTSPOTS: tuple[HotspotSpec, ...] = (
    HotspotSpec("Storegade/Jernbanegade, Esbjerg", "junction", "Esbjerg", ("Storegade", "Jernbanegade"), 36),
    HotspotSpec("Rundkørslen Augustenborg Landevej/Ringvejen, Sønderborg", "junction", "Sønderborg",
                ("Augustenborg Landevej", RING_NAME), 28, roundabout=True),
    HotspotSpec("Gåskærgade/Bispebrovej, Haderslev", "junction", "Haderslev", ("Gåskærgade", "Bispebrovej"), 22),
    HotspotSpec("H.P. Hanssens Gade/Nygade, Aabenraa", "junction", "Aabenraa", ("H.P. Hanssens Gade", "Nygade"), 20),
    HotspotSpec("Haderslevvej, Aabenraa", "stretch", "Aabenraa", ("Haderslevvej",), 30,
                stretch_from_m=60.0, stretch_length_m=450.0),
)


#: Busy but safe: a roundabout of two distributor roads in the largest town. Nothing is
#: planted there; it gets the background accidents of its traffic (more than most junctions
#: of the kommune), i.e. about what comparable junctions get, and must NOT rank as a hotspot.
BUSY_SAFE: tuple[HotspotSpec, ...] = (
    HotspotSpec("Rundkørslen Ringvejen/Vardevej, Esbjerg", "busy_safe", "Esbjerg", (RING_NAME, "Vardevej"), 0,
                roundabout=True),
)


def radial_name(road_name: str, to_town: str) -> str:
    """The name a rural road has where it leaves a town (route numbers become '<to>vej')."""
    return f"{to_town}vej" if road_name.startswith("Rute ") else road_name
