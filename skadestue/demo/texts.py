"""Free text as people type it: ward `ulykkessted`, narratives with personal details.

Spelling variants (typos, aa/å, abbreviations, Skt./Sankt) are made once per distinct street
name; the texts are then assembled column-wise per template, never row by row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skadestue.demo.people import phone_numbers, synthetic_names

_ASCII = (("æ", "ae"), ("ø", "oe"), ("å", "aa"), ("Æ", "Ae"), ("Ø", "Oe"), ("Å", "Aa"))
_EXPANSIONS = (("Skt. ", "Sankt "), ("Sankt ", "Skt. "), ("Chr. ", "Christian "), ("H.C. ", "HC "),
               ("H.P. ", "HP "), ("Gl. ", "Gammel "))
_NEIGHBOURS = "qwertyuiopasdfghjklzxcvbnm"


def ascii_fold(name: str) -> str:
    """æ/ø/å written ae/oe/aa (and Aa written Å the other way round)."""
    if "Aa" in name or "aa" in name:
        return name.replace("Aa", "Å").replace("aa", "å")
    for a, b in _ASCII:
        name = name.replace(a, b)
    return name


def abbreviate(name: str) -> str:
    """Kongensgade -> Kongensg., Ribevej -> Ribev., Skt./Chr. written out or shortened."""
    for a, b in _EXPANSIONS:
        if a in name:
            return name.replace(a, b, 1)
    for suffix, short in (("gade", "g."), ("vej", "v."), ("Gade", "G."), ("Vej", "V.")):
        if name.endswith(suffix) and len(name) > len(suffix) + 4:
            return name[: -len(suffix)] + short
    return name


def typo(name: str, rng: np.random.Generator) -> str:
    """One or two slips of the keyboard: a letter lost, doubled, swapped or mistyped."""
    chars = list(name)
    for _ in range(1 + int(rng.random() < 0.3)):
        letters = [i for i in range(1, len(chars)) if chars[i].isalpha()]
        if not letters:
            break
        i = letters[rng.integers(0, len(letters))]
        op = rng.integers(0, 4)
        if op == 0:
            del chars[i]
        elif op == 1:
            chars.insert(i, chars[i])
        elif op == 2 and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            chars[i] = _NEIGHBOURS[rng.integers(0, len(_NEIGHBOURS))]
    return "".join(chars)


def spelling_variants(names: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    """Per distinct name: lower, ascii, abbreviated and typo spellings (index = name)."""
    distinct = sorted(set(names.dropna()) - {""})
    rows = {n: dict(lower=n.lower(), ascii=ascii_fold(n), abbr=abbreviate(n), typo=typo(n, rng)) for n in distinct}
    return pd.DataFrame.from_dict(rows, orient="index")


def _spell(col: pd.Series, variants: pd.DataFrame, how: str) -> pd.Series:
    return col.map(variants[how]).fillna(col)


def _where(cond: pd.Series, a: pd.Series, b: pd.Series) -> pd.Series:
    return a.where(cond, b)


#: Location templates per kind: (weight, text from the columns of a frame d).
ADDRESS_TEMPLATES = (
    (0.17, lambda d: d.st + " " + d.nr + ", " + d.pc + " " + d.tw),
    (0.09, lambda d: d.s_low + " " + d.nr + " " + d.t_low),
    (0.08, lambda d: d.s_abbr + " " + d.nr),
    (0.05, lambda d: "ud for nr. " + d.nr + " " + d.st),
    (0.04, lambda d: d.st + " ud for nr. " + d.nr),
    (0.06, lambda d: _where(d.cyclist, "cykelstien langs " + d.st, d.st + " " + d.nr)),
    (0.10, lambda d: d.s_typo + " " + d.nr + ", " + d.tw),
    (0.06, lambda d: d.s_ascii + " " + d.nr + " " + d.t_ascii),
    (0.07, lambda d: d.st),
    (0.07, lambda d: d.st + ", " + d.tw),
    (0.05, lambda d: d.tw),
    (0.16, lambda d: d.st + " " + d.nr),
)
JUNCTION_TEMPLATES = (
    (0.15, lambda d: "krydset " + d.st + "/" + d.cr + " " + d.tw),
    (0.12, lambda d: d.st + " og " + d.cr),
    (0.08, lambda d: "hjørnet af " + d.st + " og " + d.cr),
    (0.10, lambda d: _where(d.roundabout, "rundkørslen " + d.st + "/" + d.cr, "krydset " + d.st + "/" + d.cr)),
    (0.08, lambda d: d.st + " ved " + d.cr),
    (0.12, lambda d: d.st + "/" + d.cr),
    (0.07, lambda d: "krydset " + d.st + " - " + d.cr + ", " + d.pc + " " + d.tw),
    (0.07, lambda d: d.s_typo + "/" + d.cr),
    (0.06, lambda d: "kryds " + d.s_low + "/" + d.c_low),
    (0.05, lambda d: d.st + " " + d.tw),
    (0.06, lambda d: _where(d.roundabout, "rundkørslen ved " + d.st, "lyskrydset ved " + d.st + "/" + d.cr)),
    (0.04, lambda d: d.tw),
)
RURAL_TEMPLATES = (
    (0.35, lambda d: d.st + " ved " + d.tw),
    (0.18, lambda d: d.st),
    (0.20, lambda d: _where(d.nr != "", d.st + " " + d.nr, d.st + " ved " + d.tw)),
    (0.10, lambda d: d.s_low + " v. " + d.t_low),
    (0.10, lambda d: _where(d.cyclist, "cykelstien langs " + d.st, d.st + " ved " + d.tw)),
    (0.07, lambda d: d.tw),
)
LANDMARK_TEMPLATES = (
    (0.35, lambda d: "p-pladsen ved " + d.lm),
    (0.25, lambda d: "ved " + d.lm),
    (0.20, lambda d: d.lm),
    (0.20, lambda d: d.lm + ", " + d.tw),
)
TEMPLATES = {"address": ADDRESS_TEMPLATES, "junction": JUNCTION_TEMPLATES, "rural": RURAL_TEMPLATES,
             "landmark": LANDMARK_TEMPLATES}


def ulykkessted(ref: pd.DataFrame, rng: np.random.Generator, blank_share: float = 0.10) -> pd.Series:
    """The ward's location text for each contact from its reference (kind, street, husnr,
    cross, town, postnr, landmark, roundabout, road_user)."""
    n = len(ref)
    out = pd.Series("", index=ref.index, dtype=object)
    variants = spelling_variants(pd.concat([ref["street"], ref["cross"], ref["town"]]), rng)
    d = pd.DataFrame({"st": ref["street"], "cr": ref["cross"], "tw": ref["town"], "nr": ref["husnr"],
                      "pc": ref["postnr"], "lm": ref["landmark"], "roundabout": ref["roundabout"].astype(bool),
                      "cyclist": ref["road_user"].isin(["cyclist", "e_bike"])}, index=ref.index)
    for col, src, how in (("s_low", "st", "lower"), ("t_low", "tw", "lower"), ("c_low", "cr", "lower"),
                          ("s_abbr", "st", "abbr"), ("s_typo", "st", "typo"), ("s_ascii", "st", "ascii"),
                          ("t_ascii", "tw", "ascii")):
        d[col] = _spell(d[src], variants, how)
    kind = ref["kind"].to_numpy()
    for k, templates in TEMPLATES.items():
        m = kind == k
        p = np.array([w for w, _ in templates])
        pick = rng.choice(len(templates), size=n, p=p / p.sum())
        for i, (_, make) in enumerate(templates):
            sel = m & (pick == i)
            if sel.any():
                out[sel] = make(d[sel])
    # Where there is a roundabout, wards say so.
    rb = (kind == "junction") & d["roundabout"].to_numpy() & (rng.random(n) < 0.45)
    ved = rng.random(n) < 0.4
    out[rb & ved] = "rundkørslen ved " + d.loc[rb & ved, "st"]
    out[rb & ~ved] = "rundkørslen " + d.loc[rb & ~ved, "st"] + "/" + d.loc[rb & ~ved, "cr"]
    has_nr = ref["husnr"] != ""
    S = ref["street"]
    # Address templates without a number fall back to the street.
    no_nr = (ref["kind"] == "address") & ~has_nr
    out[no_nr] = S[no_nr]
    casing = rng.random(n)
    out = out.where(casing > 0.08, out.str.lower())
    out = out.where(casing < 0.97, out.str.upper())
    out[rng.random(n) < blank_share] = ""
    return out


_SINGLE = (
    "Pt. væltet på {tm}. Ingen bevidsthedstab.",
    "Faldet af {tm} i glat føre, slog {krop}.",
    "Kørt ind i {mp} på {tm}. Smerter i {krop}.",
    "Ankommer med ambulance efter eneulykke. {krop} hævet.",
)
_COLLISION = (
    "Påkørt af {mp}. Smerter i {krop}.",
    "Kollision med {mp}, havde hjelm på.",
    "Trafikuheld, {tm} mod {mp}. Obs. commotio.",
    "Ankommer med ambulance efter færdselsuheld. {krop} hævet.",
)
_TM = {"pedestrian": "fortovet", "cyclist": "cykel", "e_bike": "el-cykel", "moped": "knallert",
       "motorcycle": "motorcykel", "car": "bil", "van": "varebil", "truck": "lastbil", "bus": "bus",
       "other": "løbehjul", "unknown": "cykel"}
_MP = {"car": "en bil", "van": "en varebil", "truck": "en lastbil", "bus": "en bus", "cyclist": "en cyklist",
       "e_bike": "en el-cyklist", "pedestrian": "en fodgænger", "moped": "en knallert",
       "motorcycle": "en motorcykel", "other": "et dyr", "fixed_object": "en lygtepæl", "none": "kantstenen",
       "unknown": "noget"}
_KROP = ("venstre håndled", "højre skulder", "hovedet", "knæet", "nakken", "brystkassen", "højre ankel")
_EXTRAS = (
    "Pårørende {navn} kontaktet på tlf. {tlf}.",
    "Ledsaget af {navn}.",
    "Pt. oplyser cpr {cpr}.",
    "Ring til {navn} {tlf} ang. cyklen.",
    "Kontakt: tlf {tlf}.",
)


def fritekst(road_user: pd.Series, counterpart: pd.Series, cpr: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Ward narratives; ~20 % carry a made-up name, a phone number or the patient's CPR."""
    n = len(road_user)
    idx = road_user.index
    values = dict(tm=road_user.map(_TM).fillna("cykel"), mp=counterpart.map(_MP).fillna("noget"),
                  krop=pd.Series(np.array(_KROP)[rng.integers(0, len(_KROP), n)], index=idx))
    single = counterpart.isin(["none", "fixed_object"]).to_numpy()
    body = pd.Series("", index=idx, dtype=object)
    pick = rng.integers(0, 4, n)
    for k in range(4):
        for templates, which in ((_SINGLE, single), (_COLLISION, ~single)):
            sel = which & (pick == k)
            body[sel] = _fill(templates[k], {key: v[sel] for key, v in values.items()})
    extra_pick = rng.integers(0, len(_EXTRAS), n)
    with_extra = rng.random(n) < 0.2
    names = pd.Series(synthetic_names(rng, n), index=idx)
    phones = pd.Series(phone_numbers(rng, n), index=idx)
    has_cpr = (cpr.str.len() >= 10).to_numpy()
    for k, tpl in enumerate(_EXTRAS):
        sel = with_extra & (extra_pick == k)
        if "{cpr}" in tpl:
            sel &= has_cpr
        body[sel] = body[sel] + " " + _fill(tpl, dict(navn=names[sel], tlf=phones[sel], cpr=cpr[sel]))
    return body


def _fill(template: str, values: dict[str, pd.Series]) -> pd.Series:
    """Column-wise str.format: '{a} og {b}' with a and b Series."""
    parts = template.replace("}", "{").split("{")
    out = pd.Series("", index=next(iter(values.values())).index, dtype=object)
    for i, part in enumerate(parts):
        out = out + (values[part] if i % 2 == 1 else part)
    return out


_POLICE_COLLISION = (
    "{r1} kørte ind i {r2} i krydset.",
    "{r2} blev ramt af {r1} under svingning.",
    "Færdselsuheld mellem {r1} og {r2}. Vidne {navn} tlf. {tlf}.",
    "Fører af {r1} ({navn}) oplyste at have været blændet af solen.",
)
_POLICE_SINGLE = (
    "{r1} mistede herredømmet og kørte ind i {r2}.",
    "{r1} kørte af vejen i glat føre.",
    "Fører af {r1} ({navn}) oplyste at være blevet blændet og ramte {r2}.",
    "Eneuheld med {r1}. Vidne {navn} tlf. {tlf}.",
)


def uheldstekst(r1: pd.Series, r2: pd.Series, single: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """Police narratives (r1/r2: the parties in Danish); some name a made-up driver or witness."""
    n = len(r1)
    idx = r1.index
    values = dict(r1=r1, r2=r2, navn=pd.Series(synthetic_names(rng, n), index=idx),
                  tlf=pd.Series(phone_numbers(rng, n), index=idx))
    out = pd.Series("", index=idx, dtype=object)
    pick = rng.integers(0, 4, n)
    for k in range(4):
        for templates, which in ((_POLICE_SINGLE, single), (_POLICE_COLLISION, ~single)):
            sel = which & (pick == k)
            out[sel] = _fill(templates[k], {key: v[sel] for key, v in values.items()})
    return out.str[:1].str.upper() + out.str[1:]


_STRFTIME_SLICES = {"%Y": (0, 4), "%m": (5, 7), "%d": (8, 10), "%H": (11, 13), "%M": (14, 16)}


def fast_strftime(values: pd.Series, fmt: str) -> np.ndarray:
    """Format datetimes with %Y %m %d %H %M %S (seconds always 00) and literals, vectorised:
    pandas' strftime formats one value at a time, too slow at scale 10."""
    n = len(values)
    iso = np.datetime_as_string(values.to_numpy().astype("datetime64[m]"), unit="m").astype("S16")
    b = iso.view(np.uint8).reshape(n, 16)
    parts, i = [], 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in _STRFTIME_SLICES:
            lo, hi = _STRFTIME_SLICES[tok]
            parts.append(b[:, lo:hi])
            i += 2
        elif tok == "%S":
            parts.append(np.full((n, 2), ord("0"), dtype=np.uint8))
            i += 2
        else:
            parts.append(np.full((n, 1), fmt[i].encode("ascii")[0], dtype=np.uint8))
            i += 1
    out = np.ascontiguousarray(np.hstack(parts))
    return out.view(f"S{out.shape[1]}").ravel().astype(str)
