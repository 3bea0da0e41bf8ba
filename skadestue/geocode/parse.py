"""Parse a free-text accident location (as typed at a ward) into its parts.

The parser knows Danish phrasing, not the gazetteer: ``Vejnavn 12B, 6700 Esbjerg``,
``krydset A/B``, ``hjørnet af A og B``, ``rundkørslen ved A``, ``cykelstien ud for Vestervej 40``,
``Rute 11 km 23``, ``p-pladsen ved Bilka``. Whether ``Esbjerg`` alone is a town or a street is
decided with the optional ``towns`` set (folded names, see :func:`normalise`); the matcher
passes the gazetteer's towns.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from skadestue.config import REGION_KOMMUNER
from skadestue.geocode.normalise import STRAY_WORDS, normalise, simplify

KINDS = ("address", "junction", "street", "house_near", "road_km", "town", "landmark", "blank")

#: Towns known without a gazetteer (the region's municipalities and larger towns), folded.
DEFAULT_TOWNS: frozenset[str] = frozenset(
    normalise(t) for t in (*REGION_KOMMUNER.values(), "Ribe", "Vojens", "Gråsten", "Rødding",
                           "Bramming", "Kolding", "Odense", "Nordborg", "Tinglev", "Padborg",
                           "Skærbæk", "Løgumkloster", "Brørup", "Holsted", "Nordby", "Oksbøl")
)

_BLANK = re.compile(r"^[\s\-\?\.,/]*(?:ukendt|uoplyst|ikke oplyst|vides ikke|nn|na|n/a)?[\s\-\?\.,/]*$",
                    re.IGNORECASE)
_ROAD = re.compile(
    r"\b(?:rute|rv|primærrute|sekundærrute|hovedvej|motorvej|e)\.?\s*(\d{1,3})\b",
    re.IGNORECASE,
)
#: 'landevej nr 18' is a road number only with a km; else it is a house number.
_LANDEVEJ_NR = re.compile(r"\blandevej\s+nr\.?\s*(\d{1,3})\b", re.IGNORECASE)
_KM = re.compile(r"\bkm\.?\s*(\d{1,3}(?:[.,]\d{1,3})?)", re.IGNORECASE)
_POSTNR = re.compile(
    r"(?:^|[\s,])(?:dk-?)?(\d{4})(?:\s+([^\d,/]+?))?\s*$", re.IGNORECASE
)
_NEAR_NUMBER = re.compile(
    r"\b(?:ud\s*for|udfor|ved|overfor|foran|ved siden af)\s+(?:nr\.?|nummer|hus\s*nr\.?)\s*"
    r"(\d{1,3})\s*([a-zA-Z])?\b",
    re.IGNORECASE,
)
#: A floor/door part of a DAR address: '2. th', 'st. tv', '1. 5', '3. 12b', 'kl.', 'st 8b', '41'.
_FLOOR = re.compile(
    r"^\s*(?:(?:\d{1,2}|st|kl|k\d)\.?\s*(?:sal\.?)?\s*(?:tv|th|mf|\d{1,4}\s*[a-z]?)?\.?"
    r"|(?:dør\s*)?\d{1,4}\s*[a-z]?)\s*$",
    re.IGNORECASE)
_NUMBER = re.compile(
    r"^(?P<street>.*[^\d\s])\s+(?P<num>\d{1,3})\s*(?P<letter>[a-zA-Z])?(?=[\s,]|$)(?P<rest>.*)$"
)
_JUNCTION_SPLIT = (
    re.compile(r"\s*/\s*"), re.compile(r"\s*&\s*"), re.compile(r"\s+og\s+", re.IGNORECASE),
    re.compile(r"\s+-+\s+"), re.compile(r"\s+–\s+"),
    re.compile(r"\s+x\s+", re.IGNORECASE), re.compile(r"\s+mod\s+", re.IGNORECASE),
)
#: Any of the junction splitters (a text none of them matches is not a junction of two).
_ANY_SPLIT = re.compile("|".join(f"(?:{r.pattern})" for r in _JUNCTION_SPLIT), re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_POSTNR_ONLY = re.compile(r"^\d{4}$")
_WS = re.compile(r"\s+")
_NR_SUFFIX = re.compile(r"\s+(?:nr|nummer)\.?$", re.IGNORECASE)
_NEAR_WORD = re.compile(r"\b(ud\s*for|udfor|overfor|foran)\b", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"^\d{1,3}\s*[a-zA-Z]?$")
_JOINER_START = re.compile(r"^(?:(?:og|x|mod|ved)(?:\s|$)|v/|/|&|-+\s)", re.IGNORECASE)
_VED = re.compile(r"\s+(?:ved|v/)\s+", re.IGNORECASE)
_JUNCTION_WORDS = ("kryds", "hjørne", "rundkørs", "lyskryds")
_JUNCTION_WORD = re.compile("|".join(_JUNCTION_WORDS))
_LANDMARK_PREFIX = re.compile(
    r"^\s*(?:p-pladsen|p-plads|parkeringspladsen|parkeringsplads|indkørslen|indkørsel|"
    r"tankstationen|tanken|stationen|banegården|skolen|børnehaven|butikken|centret|centeret|"
    r"pladsen|havnen|stranden|rastepladsen|skoven|marken|hjemme|arbejdspladsen)\b"
    r"(?:\s+(?:ved|på|til|hos|i|bag|foran))?\s*(?P<name>.*)$",
    re.IGNORECASE,
)
_STREET_SUFFIX = re.compile(
    r"(?:vej|gade|allé|alle|stræde|vænget|vænge|boulevard|plads|torv|sti|stien|gyde|bakke|"
    r"bakken|parken|park|have|haven|toft|vang|vangen|løkke|ager|eng|engen|dal|bro|kaj|høj|"
    r"højen|tofte|skov|mark|hegn|lund|vejen|landevej|gården|kær|krog|vig|strand)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedLocation:
    """The parts of one location text; ``kind`` is one of :data:`KINDS`."""

    kind: str
    text: str = ""
    street: str | None = None
    street2: str | None = None
    husnr: int | None = None
    letter: str = ""
    postnr: str | None = None
    town: str | None = None
    road: str | None = None
    km: float | None = None
    landmark: str | None = None
    #: 'ved' for ``A ved B`` (B may be a landmark rather than a street).
    connector: str | None = None


def _may_split(s: str) -> bool:
    """False when no junction splitter can match (none of their literals occurs)."""
    low = s.lower()
    return any(w in low for w in _SPLIT_LITERALS)


_SPLIT_LITERALS = ("/", "&", "og", "-", "\u2013", "x", "mod")


def _strip_stray(part: str) -> tuple[str, bool]:
    """Drop leading stray words; also say whether a junction word was among them."""
    words = part.strip(" ,").split()
    junction = False
    while words and words[0].lower().strip(".,:") in STRAY_WORDS:
        junction = junction or _JUNCTION_WORD.search(words[0].lower()) is not None
        words = words[1:]
    return " ".join(words).strip(" ,"), junction


def _join_stray_commas(parts: list[str]) -> list[str]:
    """``Vestervej , 40`` and ``Vestervej , og Søndergade``: a comma typed inside one phrase.

    A bare house number right after a street part without a number, or a part starting with a
    junction word (og, x, mod, ved, /), belongs to the part before it."""
    out: list[str] = []
    for part in parts:
        if out and ((_BARE_NUMBER.match(part) and not _DIGIT.search(out[-1]))
                    or _JOINER_START.match(part)):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def _split_postnr(text: str) -> tuple[str, str | None, str | None]:
    """Take a trailing ``6700 Esbjerg`` (postnr + optional town) off the text."""
    m = _POSTNR.search(text)
    if not m:
        return text, None, None
    town = (m.group(2) or "").strip(" ,.") or None
    return text[: m.start()].strip(" ,"), m.group(1), town


def _trailing_town(part: str, towns: Collection[str]) -> tuple[str, str | None]:
    """Split ``Kongensgade Esbjerg`` into street and town when the last words are a town."""
    words = part.split()
    for n in (3, 2, 1):
        if len(words) > n and normalise(" ".join(words[-n:])) in towns:
            return " ".join(words[:-n]), _strip_stray(" ".join(words[-n:]))[0]
    return part, None


def _split_number(part: str) -> tuple[str, int | None, str, str]:
    """``Vestervej 40B Esbjerg`` -> (``Vestervej``, 40, ``B``, ``Esbjerg``)."""
    m = _NUMBER.match(part)
    if not m:
        return part, None, "", ""
    street = _NR_SUFFIX.sub("", m.group("street").strip(" ,"))
    letter, rest = m.group("letter") or "", m.group("rest")
    if letter == "i" and part[m.start("letter") - 1].isspace() and rest.strip(" ,."):
        letter, rest = "", "i" + rest      # 'Vestergade 6 i Ribe': 'i' is 'in', not a letter
    return street.strip(" ,"), int(m.group("num")), letter.upper(), rest.strip(" ,.")


def _is_town(name: str, towns: Collection[str]) -> bool:
    """A name that is a known town and does not look like a street."""
    return normalise(name) in towns and not _STREET_SUFFIX.search(simplify(name).replace(" ", ""))


def parse_location(text: object, towns: Collection[str] | None = None) -> ParsedLocation:
    """Parse a ward's ``ulykkessted`` text (see module doc); never raises on odd input."""
    raw = "" if text is None or (isinstance(text, float) and text != text) else str(text)
    towns = DEFAULT_TOWNS if towns is None else towns
    s = _WS.sub(" ", raw).strip()
    if not s or _BLANK.match(s):
        return ParsedLocation("blank", raw)

    # Cheap literal pre-checks skip regexes that cannot match (a regex needs its literal).
    km = _KM.search(s) if "km" in s.lower() else None
    road = _ROAD.search(s) or (_LANDEVEJ_NR.search(s) if km else None)
    if road:
        rest = _LANDEVEJ_NR.sub(" ", _ROAD.sub(" ", _KM.sub(" ", s)))
        rest, _ = _strip_stray(rest)
        return ParsedLocation("road_km", raw, road=road.group(1),
                              km=float(km.group(1).replace(",", ".")) if km else None,
                              town=rest or None)

    # Comma parts: re-join stray commas, drop floor/door parts, remember a trailing town part.
    # A last part of just four digits ('Vejnavn 12,6700') is the postcode, not a door.
    joined = _join_stray_commas([p.strip() for p in s.split(",") if p.strip()])
    parts = [p for i, p in enumerate(joined)
             if not _FLOOR.match(p) or (0 < i == len(joined) - 1 and _POSTNR_ONLY.match(p))]
    s = ", ".join(parts)
    s, postnr, town = _split_postnr(s)
    parts = [p.strip() for p in s.split(",") if p.strip()]
    if len(parts) > 1 and not _DIGIT.search(parts[-1]) and town is None:
        town = parts[-1]
        parts = parts[:-1]
    s = " ".join(parts)
    if town:
        town = _strip_stray(town)[0] or None

    low = s.lower()
    near = _NEAR_NUMBER.search(s) if "nr" in low or "nummer" in low else None
    husnr_near: int | None = None
    letter_near = ""
    if near:
        husnr_near, letter_near = int(near.group(1)), (near.group(2) or "").upper()
        s = (s[: near.start()] + " " + s[near.end():]).strip()

    lm = _LANDMARK_PREFIX.match(s)
    if lm and not _DIGIT.search(lm.group("name") or ""):
        name, _ = _strip_stray(lm.group("name") or "")
        if not name or not _STREET_SUFFIX.search(simplify(name).replace(" ", "")):
            return ParsedLocation("landmark", raw, landmark=name or s, postnr=postnr, town=town)
        s = name

    s, junction_word = _strip_stray(s)
    if not s:
        kind = "town" if (postnr or town) else "blank"
        return ParsedLocation(kind, raw, postnr=postnr, town=town)

    for splitter in _JUNCTION_SPLIT if _may_split(s) and _ANY_SPLIT.search(s) else ():
        pieces = [p for p in splitter.split(s) if p.strip()]
        if len(pieces) == 2:
            a, _ = _strip_stray(pieces[0])
            b, _ = _strip_stray(pieces[1])
            b, town_b = _trailing_town(b, towns) if town is None else (b, None)
            if a and b:
                return ParsedLocation("junction", raw, street=a, street2=b, postnr=postnr,
                                      town=town or town_b)

    street, husnr, letter, rest = _split_number(s)
    if husnr is None and husnr_near is not None:
        husnr, letter = husnr_near, letter_near
    if rest and town is None:
        town = _strip_stray(rest)[0] or None
    ved = _VED.split(street)
    if len(ved) == 2 and husnr is None:
        a, _ = _strip_stray(ved[0])
        b, _ = _strip_stray(ved[1])
        if a and b:
            if _is_town(b, towns) and town is None:
                return ParsedLocation("street", raw, street=a, postnr=postnr, town=b)
            return ParsedLocation("junction", raw, street=a, street2=b, postnr=postnr,
                                  town=town, connector="ved")
    street, _ = _strip_stray(street)
    if husnr is None and town is None:
        street, town = _trailing_town(street, towns)
    if husnr is None and _is_town(street, towns):
        return ParsedLocation("town", raw, postnr=postnr, town=street)
    if husnr is not None:
        kind = "house_near" if near or _NEAR_WORD.search(raw) else "address"
        return ParsedLocation(kind, raw, street=street, husnr=husnr, letter=letter,
                              postnr=postnr, town=town)
    return ParsedLocation("street", raw, street=street, postnr=postnr, town=town,
                          connector="junction" if junction_word else None)
