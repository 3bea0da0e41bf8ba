"""Street-name normalisation shared by the gazetteer and the free-text input.

Two levels, so quality can follow the address-washing scale (domain.md §6):

* :func:`simplify` - case, punctuation and spacing only. Equal after ``simplify`` = an exact
  match (quality A).
* :func:`normalise` - ``simplify`` plus abbreviations (``g.``/``gd.`` gade, ``v.`` vej,
  ``Skt.`` Sankt, ``Chr.`` Christian, ...), leading stray words (``cykelstien``, ``ved`` ...)
  and a folded spelling (``å``->``aa``, ``ø``->``oe``, ``æ``->``ae``, ``é``->``e``), applied to
  BOTH sides, so ``Aabenraa``/``Åbenrå`` and ``Kongensg.``/``Kongensgade`` meet (quality B).
* :func:`compact` - ``normalise`` without spaces and hyphens: the lookup key
  (``Middelfart Vej`` = ``Middelfartvej``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: Folding of Danish and neighbouring letters to an ASCII-ish form.
_FOLD = str.maketrans({
    "å": "aa", "ø": "oe", "æ": "ae", "é": "e", "è": "e", "ê": "e", "á": "a", "à": "a",
    "ü": "u", "ö": "oe", "ä": "ae", "ó": "o", "í": "i", "ú": "u", "ß": "ss",
})

#: Abbreviations as typed at wards and by police (regex on lower-case text with dots kept).
_ABBREVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r) for p, r in (
        (r"\b(?:skt|sct)\b\.?\s*", "sankt "),  # 'St.' is left alone: Store/Sankt/Søndre
        (r"\bchr(?:\.\s*|\s+)(?=[a-zæøå0-9])", "christian "),
        (r"\bfr\.\s*(?=[a-zæøå])", "frederik "),
        (r"\bkr\.\s*(?=[a-zæøå])", "kristian "),
        (r"\bh\.\s*c\.\s*", "hc "),
        (r"(?<=[a-zæøå])gd\.?(?=\s|$|,)", "gade"),         # Kongensgd. / Kongensgd
        (r"(?<=[a-zæøå])g\.(?=\s|$|,)", "gade"),            # Kongensg.
        (r"(?<=[a-zæøå])v\.(?=\s|$|,)", "vej"),             # Middelfartv.
        (r"(?<=\s)(?:gd|g)\.?(?=\s|$|,)", "gade"),          # Kongens g.
        (r"(?<=\s)v\.(?=\s|$|,)", "vej"),                   # Middelfart v.
        (r"\bpl\.(?=\s|$|,)", "plads"),
        (r"\b(?:boul|blvd|bd)\.(?=\s|$|,)", "boulevard"),
        (r"\balle\b|\balléen\b|\balleen\b", "allé"),
    )
)

#: Words that describe where on the road rather than which road; stripped when leading.
STRAY_WORDS: frozenset[str] = frozenset({
    "cykelstien", "cykelsti", "cykelstiem", "fortovet", "fortov", "vejbanen", "kørebanen",
    "krydset", "kryds", "lyskrydset", "lyskryds", "t-krydset", "hjørnet", "hjørne", "af",
    "rundkørslen", "rundkørsel", "ved", "udfor", "ud", "for", "overfor", "foran", "over",
    "langs", "lige", "nær", "i", "på", "paa", "mellem", "fra", "til", "det", "den", "ude",
    "fodgængerovergangen", "fodgængerfeltet", "overgangen", "busstoppestedet", "stoppestedet",
    "helle", "hellen", "svingbanen", "afkørslen", "tilkørslen", "nr", "nummer", "mod",
})

_PUNCT = re.compile(r"[^\w\s\-/]+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def simplify(text: object) -> str:
    """Lower case, NFC, punctuation to spaces, single spaces: the 'exact match' form."""
    if text is None or (isinstance(text, float) and text != text):
        return ""
    s = unicodedata.normalize("NFC", str(text)).lower().replace("_", " ")
    s = _PUNCT.sub(" ", s).replace("/", " ").replace("-", " ")
    return _SPACE.sub(" ", s).strip()


def expand_abbreviations(text: str) -> str:
    """Expand the usual street-name abbreviations in lower-case text (dots still present)."""
    s = unicodedata.normalize("NFC", text).lower()
    for pattern, repl in _ABBREVIATIONS:
        s = pattern.sub(repl, s)
    return s


def fold(text: str) -> str:
    """Fold æ/ø/å and accents to their two-letter ASCII spelling (lower-case input)."""
    return text.translate(_FOLD)


def strip_stray_words(simple: str) -> str:
    """Drop leading stray words (``cykelstien ud for``), keeping at least one word."""
    words = simple.split(" ")
    while len(words) > 1 and words[0] in STRAY_WORDS:
        words = words[1:]
    return " ".join(words)


@lru_cache(maxsize=200_000)
def normalise(text: str) -> str:
    """The folded comparison form of a street or place name (see module doc)."""
    if text is None:
        return ""
    s = simplify(expand_abbreviations(str(text)))
    s = strip_stray_words(s)
    return fold(s)


def compact(text: str) -> str:
    """The lookup key: :func:`normalise` without spaces or hyphens."""
    return normalise(text).replace(" ", "").replace("-", "")


def simple_key(text: str) -> str:
    """:func:`simplify` without spaces: the key for an exact (quality A) name match."""
    return simplify(text).replace(" ", "")
