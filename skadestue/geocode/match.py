"""Match parsed locations against the gazetteer held in memory.

Quality follows the address-washing scale (domain.md §6, outputs.md §1):

* ``A`` exact street name (case/punctuation only), unique in the stated area, house number
  exact (or an exact junction of two such streets);
* ``B`` safe with small differences: abbreviation, aa/å, typo (edit distance <= 3, clearly the
  closest name), a house-number letter or a neighbouring number, two streets that meet
  without a shared node;
* ``C`` uncertain: street only, a far nearest number, the name found only outside the stated
  postcode/kommune, or the same name in several places lying close together;
* ``none``: not placed, with the reason (blank, town only, unknown street, ambiguous ...).

The stated area narrows the search: postcode in the text, then the town in the text, then the
kommune hint; a name found only outside it (a neighbour) is capped at C. A ward's hint never
overrides the text: it only narrows and orders the search.

Speed (bench/bench_geocode.py): address texts whose name matches exactly or folded in the
first search area and whose number exists are answered for a whole batch at once by
:mod:`skadestue.geocode.fast` (same answers, tested); for the rest, exact and folded names are
dict look-ups; house numbers are slices of one sorted numpy array per column (strings as
category codes); the fuzzy fallback runs rapidfuzz ``ratio`` only over the scope's names whose
length can reach the cut-off, and is cached per (name, scope); big batches are split over
forked workers. In the fast path the fuzzy look-ups a batch needs in its first search areas are
done up front, one ``rapidfuzz.process.cdist`` per area over keys built with numpy
(:meth:`Gazetteer.prefill_fuzzy`, same answers as :meth:`Gazetteer._fuzzy`, tested).
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import cached_property

import duckdb
import numpy as np
import pandas as pd
import shapely
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Levenshtein

from skadestue.config import GeocodeSettings
from skadestue.geocode.normalise import compact, normalise, simplify, strip_stray_words
from skadestue.geocode.parse import DEFAULT_TOWNS, ParsedLocation, parse_location

log = logging.getLogger(__name__)

QUALITY_ORDER = {"A": 0, "B": 1, "C": 2, "none": 3}
UNCERTAINTY_M = {"address_A": 5.0, "address_B": 15.0, "house_near": 20.0, "junction": 15.0,
                 "junction_nearest": 30.0, "place": 50.0}
RESULT_COLUMNS = ["location_text", "kommunekode_hint", "x", "y", "kommunekode", "quality",
                  "uncertainty_m", "method", "matched", "reason"]


def worst(*qualities: str) -> str:
    """The worst of several qualities (A < B < C < none)."""
    return max(qualities, key=QUALITY_ORDER.__getitem__)


@dataclass
class MatchResult:
    """One geocoding answer (EPSG:25832)."""

    quality: str = "none"
    x: float | None = None
    y: float | None = None
    kommunekode: str | None = None
    uncertainty_m: float | None = None
    method: str | None = None
    matched: str | None = None
    reason: str | None = None


def _none(reason: str) -> MatchResult:
    return MatchResult(reason=reason)


def _a_key(name: str) -> str:
    """Exact-match key: case/punctuation only (leading stray words dropped)."""
    return strip_stray_words(simplify(name))


def _length_window(n: int, min_ratio: float) -> tuple[int, int]:
    """Key lengths (lo, hi) that can reach ``min_ratio`` (ratio = 2 * matches / total length)
    with an n-letter key; one slip always stays in reach."""
    lo, hi = int(n * min_ratio / (2 - min_ratio)), int(n * (2 - min_ratio) / min_ratio) + 1
    return min(lo, n - 1), max(hi, n + 1)


class _ScopeChoices:
    """Folded key -> street positions (ascending) inside one scope, looked up on demand."""

    def __init__(self, pos: np.ndarray, codes: np.ndarray, code_of: dict[str, int]) -> None:
        self._pos, self._codes, self._code_of = pos, codes, code_of

    def __getitem__(self, key: str) -> list[int]:
        return self._pos[self._codes == self._code_of[key]].tolist()

    def __bool__(self) -> bool:
        return len(self._pos) > 0


@dataclass
class NameMatch:
    """Streets (row positions) carrying one matched name, and how well the name matched."""

    idx: list[int]
    level: str          # A exact, B folded/close typo, C loose fuzzy
    note: str = ""


class AddressArrays:
    """The addresses of one street: numeric arrays, strings decoded only when needed."""

    def __init__(self, index: "AddressIndex", sl: slice) -> None:
        self._index, self._sl = index, sl
        self.tal = index.tal[sl]            # numeric house number, -1 when none
        self.x = index.x[sl]
        self.y = index.y[sl]

    @cached_property
    def bogstav(self) -> np.ndarray:
        """Letters ('' when none)."""
        return self._index._strings("husnr_bogstav", self._sl)

    @cached_property
    def postnr(self) -> np.ndarray:
        return self._index._strings("postnr", self._sl)

    @cached_property
    def postnrnavn(self) -> np.ndarray:
        return self._index._strings("postnrnavn", self._sl)

    def find(self, tal: int, letter: str) -> int | None:
        """Row of the exact house number (letters decoded only for rows with that number)."""
        codes, cats = self._index._cats["husnr_bogstav"]
        start = self._sl.start
        for k in np.flatnonzero(self.tal == tal).tolist():
            if cats[codes[start + k]] == letter:
                return k
        return None

    def husnr(self, k: int) -> str:
        """House number ``k`` as written ('12B'), built only when a label needs it."""
        return f"{self.tal[k]}{self.bogstav[k]}" if self.tal[k] >= 0 else str(self.bogstav[k])


class AddressIndex:
    """All access addresses sorted by street position; one street's rows are a slice.

    Strings (letter, postcode, town) are stored once as categories with integer codes, so
    2.5 million addresses take tens of MB, not a Python object per value."""

    def __init__(self, df: pd.DataFrame, n_streets: int) -> None:
        pos = df["pos"].to_numpy(dtype=np.int64)
        self.start = np.searchsorted(pos, np.arange(n_streets + 1), side="left")
        self.tal = df["husnr_tal"].fillna(-1).to_numpy(dtype=np.int64)
        self.x = df["x"].to_numpy(dtype=float)
        self.y = df["y"].to_numpy(dtype=float)
        self._cats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._cache: dict[int, AddressArrays] = {}
        for c in ("husnr_bogstav", "postnr", "postnrnavn"):
            cat = pd.Categorical(df[c].fillna("").astype(str))
            self._cats[c] = (np.asarray(cat.codes), np.asarray(cat.categories, dtype=object))

    @classmethod
    def from_arrays(cls, start: np.ndarray, tal: np.ndarray, x: np.ndarray, y: np.ndarray,
                    cats: dict[str, tuple[np.ndarray, np.ndarray]]) -> "AddressIndex":
        """The index from its arrays as :mod:`skadestue.geocode.cache` stores them."""
        self = cls.__new__(cls)
        self.start, self.tal, self.x, self.y = start, tal, x, y
        self._cats = dict(cats)
        self._cache = {}
        return self

    def _strings(self, col: str, sl: slice) -> np.ndarray:
        codes, cats = self._cats[col]
        return cats[codes[sl]]

    def get(self, i: int) -> AddressArrays | None:
        """The addresses of street position ``i`` (None when it has none)."""
        if i < 0 or i + 1 >= len(self.start) or self.start[i] == self.start[i + 1]:
            return None
        hit = self._cache.get(i)
        if hit is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            sl = slice(int(self.start[i]), int(self.start[i + 1]))
            hit = self._cache[i] = AddressArrays(self, sl)
        return hit

    def __getitem__(self, i: int) -> AddressArrays:
        a = self.get(i)
        if a is None:
            raise KeyError(i)
        return a

    def __len__(self) -> int:
        return int(len(self.tal))


def read_frames(con: duckdb.DuckDBPyConnection) -> dict:
    """The gazetteer tables as the matcher needs them (streets in position order, addresses
    sorted by street position, towns per street position, junctions, places, kommune names)."""
    streets = con.execute("""
        SELECT kommunekode, vejkode, vejnavn, coalesce(postnumre, []) AS postnumre, x, y,
               length_m, ST_AsWKB(geom) AS wkb
        FROM gazetteer.street ORDER BY kommunekode, vejkode""").df()
    streets["geom"] = shapely.from_wkb(
        [bytes(w) if isinstance(w, (bytes, bytearray, memoryview)) else None
         for w in streets.pop("wkb")])
    addr = con.execute("""
        SELECT s.pos, a.husnr_tal, a.husnr_bogstav, a.postnr, a.postnrnavn, a.x, a.y
        FROM gazetteer.address a
        JOIN (SELECT kommunekode, vejkode, row_number() OVER (ORDER BY kommunekode, vejkode) - 1 AS pos
              FROM gazetteer.street) s USING (kommunekode, vejkode)
        ORDER BY s.pos, a.husnr_tal, a.husnr_bogstav""").df()
    towns = con.execute("""
        SELECT DISTINCT s.pos, t.navn FROM (
            SELECT kommunekode, vejkode, postnrnavn AS navn FROM gazetteer.address
            UNION ALL SELECT kommunekode, vejkode, supplerendebynavn FROM gazetteer.address
            UNION ALL SELECT s.kommunekode, s.vejkode, p.navn FROM gazetteer.street s,
                unnest(s.postnumre) AS u(postnr) JOIN gazetteer.postcode p ON p.postnr = u.postnr
            UNION ALL SELECT s.kommunekode, s.vejkode, m.navn FROM gazetteer.street s
                JOIN gazetteer.municipality m USING (kommunekode)
        ) t JOIN (SELECT kommunekode, vejkode, row_number() OVER (ORDER BY kommunekode, vejkode) - 1 AS pos
                  FROM gazetteer.street) s USING (kommunekode, vejkode)
        WHERE t.navn IS NOT NULL""").df()
    junctions = con.execute(
        "SELECT junction_id, kommunekode, x, y, vejnavne, vejkoder FROM gazetteer.junction").df()
    places = con.execute("SELECT navn, navn_norm, kommunekode, x, y FROM gazetteer.place").df()
    kommune_names = dict(con.execute(
        "SELECT kommunekode, navn FROM gazetteer.municipality").fetchall())
    return {"streets": streets, "addresses": addr, "towns": towns, "junctions": junctions,
            "places": places, "kommune_names": kommune_names}


def street_keys(names: pd.Series) -> pd.DataFrame:
    """key_a (exact: case/punctuation) and key_b (folded) per street, computed per distinct name."""
    uniq = pd.unique(names)
    ka = {n: _a_key(n) for n in uniq}
    kb = {n: compact(n) for n in uniq}
    return pd.DataFrame({"key_a": names.map(ka).to_numpy(dtype=object),
                         "key_b": names.map(kb).to_numpy(dtype=object)})


def town_keys(towns: pd.DataFrame) -> pd.DataFrame:
    """(pos, navn_norm): the towns' names normalised once per distinct name."""
    norm = {n: normalise(n) for n in pd.unique(towns["navn"])}
    return pd.DataFrame({"pos": towns["pos"].to_numpy(dtype=np.int64),
                         "navn_norm": towns["navn"].map(norm).to_numpy(dtype=object)})


@dataclass
class Gazetteer:
    """The gazetteer tables as dicts and arrays, loaded once per geocoding run."""

    streets: pd.DataFrame
    addresses: AddressIndex
    junctions: pd.DataFrame
    places: pd.DataFrame
    kommune_names: dict[str, str]
    by_a: dict[str, list[int]] = field(default_factory=dict)
    by_b: dict[str, list[int]] = field(default_factory=dict)
    by_postnr: dict[str, set[int]] = field(default_factory=dict)
    by_kommune: dict[str, set[int]] = field(default_factory=dict)
    by_town: dict[str, set[int]] = field(default_factory=dict)
    junctions_by_road: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    col: dict[str, list] = field(default_factory=dict)
    jcol: dict[str, list] = field(default_factory=dict)
    _fuzzy_cache: dict = field(default_factory=dict)
    _choices_cache: dict = field(default_factory=dict)
    _choice_keys: dict = field(default_factory=dict)
    _choices_by_scope: dict = field(default_factory=dict)
    _keys_by_length: dict = field(default_factory=dict)
    _kb_codes: tuple | None = None
    #: Fuzzy look-ups through :meth:`prefill_fuzzy` (cdist over numpy-built scope keys) rather
    #: than :meth:`_fuzzy`; same answers. Set by the fast path while it runs.
    batch_fuzzy: bool = False
    #: The fuzzy answers found by prefill_fuzzy (kept apart from _fuzzy's, so tests compare both).
    _batch_cache: dict = field(default_factory=dict)
    _town_prefix: dict = field(default_factory=dict)
    _keys_by_len: dict = field(default_factory=dict)
    _keys_window: dict = field(default_factory=dict)
    #: skadestue.geocode.fast.FastIndex, built on first use (before any fork).
    _fast_index: object = None

    @property
    def towns(self) -> set[str]:
        return set(self.by_town)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> "Gazetteer":
        """Read gazetteer.* once into memory (the reference path; the nightly run uses
        :func:`skadestue.geocode.cache.load_gazetteer`, which gives the same object from a
        memory-mapped cache keyed by the gazetteer's fingerprint)."""
        frames = read_frames(con)
        addresses = AddressIndex(frames.pop("addresses"), len(frames["streets"]))
        return cls.from_frames(addresses=addresses, **frames)

    @classmethod
    def from_frames(cls, *, streets: pd.DataFrame, addresses: "AddressIndex", towns: pd.DataFrame,
                    junctions: pd.DataFrame, places: pd.DataFrame, kommune_names: dict[str, str],
                    keys: pd.DataFrame | None = None) -> "Gazetteer":
        """Build the in-memory gazetteer from its tables (``towns``: pos, navn or navn_norm;
        ``keys``: precomputed key_a/key_b per street, else computed here)."""
        gaz = cls(streets=streets, addresses=addresses,
                  junctions=junctions, places=places, kommune_names=kommune_names)
        gaz._index(towns, keys)
        log.info("gazetteer loaded: %d streets, %d addresses, %d junctions",
                 len(streets), len(addresses), len(junctions))
        return gaz

    def _index(self, towns: pd.DataFrame, keys: pd.DataFrame | None = None) -> None:
        """Build the lookup dicts (name keys computed once per distinct name)."""
        if keys is None:
            keys = street_keys(self.streets["vejnavn"])
        self.streets["key_b"] = keys["key_b"].tolist()
        self.col = {c: self.streets[c].tolist() for c in self.streets.columns}
        self.jcol = {c: self.junctions[c].tolist() for c in ("x", "y", "kommunekode")}
        for i, (ka, kb) in enumerate(zip(keys["key_a"].tolist(), self.col["key_b"])):
            self.by_a.setdefault(ka, []).append(i)
            self.by_b.setdefault(kb, []).append(i)
        for i, (kom, postnumre) in enumerate(zip(self.col["kommunekode"], self.col["postnumre"])):
            self.by_kommune.setdefault(kom, set()).add(i)
            for p in postnumre:
                self.by_postnr.setdefault(str(p), set()).add(i)
        if "navn_norm" not in towns.columns:
            towns = town_keys(towns)
        for navn, pos in towns.groupby("navn_norm", sort=False)["pos"]:
            self.by_town[navn] = set(pos.astype(int).tolist())
        for j, (kom, koder) in enumerate(zip(self.junctions["kommunekode"], self.junctions["vejkoder"])):
            for k in koder:
                self.junctions_by_road.setdefault((kom, k), set()).add(j)

    # -- scopes -------------------------------------------------------------------------------
    def town_scope(self, town: str) -> set[int]:
        """Streets in a town (postnrnavn, supplerende bynavn, kommune); 'Odense' = 'Odense C'."""
        t = normalise(town)
        if t in self.by_town:
            return self.by_town[t]
        if t not in self._town_prefix:
            out: set[int] = set()
            for name, idx in self.by_town.items():
                if name.startswith(t + " "):
                    out |= idx
            self._town_prefix[t] = out
        return self._town_prefix[t]

    def scopes(self, parsed: ParsedLocation, hint: str) -> list[tuple[str, set[int] | None, bool]]:
        """Search areas in order: (label, street positions or None = everywhere, capped at C)."""
        stated: list[tuple[str, set[int]]] = []
        if parsed.postnr:
            stated.append((f"postnr {parsed.postnr}", self.by_postnr.get(parsed.postnr, set())))
        if parsed.town:
            stated.append((f"town {parsed.town}", self.town_scope(parsed.town)))
        if hint:
            stated.append((f"kommune {hint}", self.by_kommune.get(hint, set())))
        out: list[tuple[str, set[int] | None, bool]] = []
        first = True
        for label, idx in stated:
            if idx:
                out.append((label, idx, not first))
                first = False
        out.append(("everywhere", None, bool(stated)))
        return out

    # -- names --------------------------------------------------------------------------------
    def _choices(self, scope_label: str, scope: set[int] | None) -> dict[str, list[int]]:
        """Folded key -> street positions, within a scope (cached per scope label)."""
        if scope_label not in self._choices_cache:
            # labels differing only in spelling ('town Ribe', 'town RIBE') share one scope set
            shared = self._choices_by_scope.get(id(scope))
            if shared is None or shared[0] is not scope:
                keys: dict[str, list[int]] = defaultdict(list)
                kb = self.col["key_b"]
                for i in (range(len(self.streets)) if scope is None else sorted(scope)):
                    keys[kb[i]].append(i)
                shared = self._choices_by_scope[id(scope)] = (scope, dict(keys), list(keys))
            self._choices_cache[scope_label] = shared[1]
            self._choice_keys[scope_label] = shared[2]
        return self._choices_cache[scope_label]

    def resolve_name(self, name: str, scope_label: str, scope: set[int] | None,
                     settings: GeocodeSettings) -> NameMatch | str | None:
        """Streets called ``name`` in a scope: a NameMatch, None (not found) or a reason
        string when the name is ambiguous between different streets."""
        ka, kb = _a_key(name), compact(name)
        if not kb:
            return None
        inside = (lambda idx: [i for i in idx if scope is None or i in scope])
        exact = inside(self.by_a.get(ka, []))
        if exact:
            return NameMatch(exact, "A")
        folded = inside(self.by_b.get(kb, []))
        if folded:
            return NameMatch(folded, "B", "spelling/abbreviation")
        key = (kb, scope_label)
        if self.batch_fuzzy:
            if key not in self._batch_cache:
                self.prefill_fuzzy({key: scope}, settings)
            return self._batch_cache[key]
        if key not in self._fuzzy_cache:
            self._fuzzy_cache[key] = self._fuzzy(kb, scope_label, scope, settings)
        return self._fuzzy_cache[key]

    def _keys_near_length(self, scope_label: str, n: int, min_ratio: float) -> list[str]:
        """The scope's keys whose length allows a ratio >= min_ratio with an n-letter key
        (ratio = 2 * matches / total length), so rapidfuzz scans a fraction of them."""
        by_len = self._keys_by_len.get(scope_label)
        if by_len is None:
            by_len = defaultdict(list)
            for k in self._choice_keys[scope_label]:
                by_len[len(k)].append(k)
            self._keys_by_len[scope_label] = by_len
        lo, hi = _length_window(n, min_ratio)
        key = (scope_label, lo, hi)
        if key not in self._keys_window:
            self._keys_window[key] = [k for m in range(lo, hi + 1) for k in by_len.get(m, ())]
        return self._keys_window[key]

    def _fuzzy(self, kb: str, scope_label: str, scope: set[int] | None,
               settings: GeocodeSettings) -> NameMatch | str | None:
        choices = self._choices(scope_label, scope)
        if not choices:
            return None
        cutoff = settings.fuzzy_min_score - settings.fuzzy_margin
        keys = self._keys_near_length(scope_label, len(kb), cutoff / 100)
        hits = process.extract(kb, keys, scorer=fuzz.ratio, limit=3, score_cutoff=cutoff)
        return self._fuzzy_decide(kb, hits, choices, settings, lambda: keys)

    def _fuzzy_decide(self, kb: str, hits: list, choices, settings: GeocodeSettings,
                      window) -> NameMatch | str | None:
        """The fuzzy answer from the best (key, ratio, _) hits, best first; ``window()``
        gives the scope's keys within reach of ``kb``'s length (for the transposition test)."""
        hits = [h for h in hits if Levenshtein.distance(kb, h[0]) <= max(3, len(kb) // 3)]
        if not hits or hits[0][1] < settings.fuzzy_min_score:
            return self._transposition(kb, choices, window())
        best, score, _ = hits[0]
        if len(hits) > 1 and score - hits[1][1] < settings.fuzzy_margin:
            a = self.col["vejnavn"][choices[best][0]]
            b = self.col["vejnavn"][choices[hits[1][0]][0]]
            return f"ambiguous street name: '{a}' or '{b}'"
        dist = Levenshtein.distance(kb, best)
        level = "B" if dist <= 3 else "C"
        if any(c.isdigit() for c in kb) and not any(c.isdigit() for c in best):
            level = "C"     # leftover numbers (floor, door) in the text: not a safe match
        return NameMatch(choices[best], level, f"typo (edit distance {dist})")

    def prefill_fuzzy(self, queries: dict[tuple[str, str], set[int] | None],
                      settings: GeocodeSettings, block: int = 256) -> None:
        """Fill the fuzzy cache for many (folded key, scope label) at once: one
        ``process.cdist`` per scope (choices converted once, not per text), then the same
        decision as :meth:`_fuzzy` on the same best three hits in the same order (score, then
        the position in the scope's keys sorted by length, as ``_keys_near_length`` lists
        them). ``queries`` maps (key, label) to the scope's street positions."""
        cutoff = settings.fuzzy_min_score - settings.fuzzy_margin
        by_label: dict[str, list[str]] = defaultdict(list)
        scope_of: dict[str, set[int] | None] = {}
        for (kb, label), scope in queries.items():
            if (kb, label) not in self._batch_cache:
                by_label[label].append(kb)
                scope_of[label] = scope
        for label, kbs in by_label.items():
            choices, keys, lens = self._scope_keys(scope_of[label])
            if not choices:
                for kb in kbs:
                    self._batch_cache[(kb, label)] = None
                continue

            def window(n: int, keys=keys, lens=lens) -> list[str]:
                lo, hi = _length_window(n, cutoff / 100)
                return keys[np.searchsorted(lens, lo, "left"):np.searchsorted(lens, hi, "right")]

            for b in range(0, len(kbs), block):
                part = kbs[b:b + block]
                scores = process.cdist(part, keys, scorer=fuzz.ratio, score_cutoff=cutoff,
                                       dtype=np.float64)
                for kb, row in zip(part, scores):
                    idx = np.flatnonzero(row >= cutoff)
                    if len(idx) > 3:
                        order = np.lexsort((idx, -row[idx]))[:3]
                        idx = idx[order]
                    else:
                        idx = idx[np.lexsort((idx, -row[idx]))]
                    hits = [(keys[k], float(row[k]), k) for k in idx.tolist()]
                    self._batch_cache[(kb, label)] = self._fuzzy_decide(
                        kb, hits, choices, settings, lambda kb=kb, w=window: w(len(kb)))

    def _scope_keys(self, scope: set[int] | None) -> tuple["_ScopeChoices", list[str], np.ndarray]:
        """A scope's folded keys as :meth:`_choices` has them, but built with numpy: (key ->
        street positions, lazily; the keys sorted by length, ties in first-occurrence order as
        :meth:`_keys_near_length` lists them; their lengths). Cached per scope set."""
        hit = self._keys_by_length.get(id(scope))
        if hit is not None and hit[0] is scope:
            return hit[1]
        if self._kb_codes is None:
            codes, uniq = pd.factorize(pd.Series(self.col["key_b"], dtype=object), sort=False)
            uniq = np.asarray(uniq, dtype=object)
            self._kb_codes = (codes.astype(np.int64), uniq,
                              np.fromiter(map(len, uniq), np.int64, len(uniq)),
                              {k: i for i, k in enumerate(uniq.tolist())})
        codes, uniq, ulen, code_of = self._kb_codes
        pos = (np.arange(len(codes), dtype=np.int64) if scope is None
               else np.sort(np.fromiter(scope, np.int64, len(scope))))
        c = codes[pos]
        u, first = np.unique(c, return_index=True)
        u = u[np.argsort(first, kind="stable")]             # first occurrence, as the dict
        u = u[np.argsort(ulen[u], kind="stable")]           # then by length, stably
        out = (_ScopeChoices(pos, c, code_of), uniq[u].tolist(), ulen[u])
        self._keys_by_length[id(scope)] = (scope, out)
        return out

    @staticmethod
    def _transposition(kb: str, choices: dict[str, list[int]], keys: list[str]) -> NameMatch | None:
        """One slip (swapped, dropped or doubled letter) in a name of 6+ letters that the ratio
        scores low (short names): B when exactly one street in scope is that close."""
        if len(kb) < 6:
            return None
        hits = process.extract(kb, keys, scorer=OSA.distance, limit=2, score_cutoff=1)
        if len(hits) != 1:
            return None
        return NameMatch(choices[hits[0][0]], "B", "typo (one swapped/missing letter)")

    def find_street(self, name: str, parsed: ParsedLocation, hint: str,
                    settings: GeocodeSettings) -> tuple[NameMatch | None, str, str | None]:
        """Resolve a street name through the scopes: (match, quality cap, reason if none)."""
        reason = None
        for label, scope, capped in self.scopes(parsed, hint):
            found = self.resolve_name(name, label, scope, settings)
            if isinstance(found, str):
                reason = found
                continue
            if found is not None:
                cap = "C" if capped else "A"
                if capped:
                    note = f"found only outside {self._stated(parsed, hint)}"
                    found = replace(found, note="; ".join(n for n in (found.note, note) if n))
                return found, cap, None
        return None, "none", reason or f"unknown street '{name}'"

    @staticmethod
    def _stated(parsed: ParsedLocation, hint: str) -> str:
        parts = [p for p in (parsed.postnr, parsed.town, hint and f"kommune {hint}") if p]
        return " / ".join(parts) or "stated area"

    # -- geometry helpers -----------------------------------------------------------------------
    def street_label(self, i: int) -> str:
        return f"{self.col['vejnavn'][i]} ({self.col['kommunekode'][i]})"

    def spread(self, points: list[tuple[float, float]]) -> float:
        """Largest distance between any two points."""
        if len(points) < 2:
            return 0.0
        arr = np.asarray(points)
        d = np.sqrt(((arr[:, None, :] - arr[None, :, :]) ** 2).sum(-1))
        return float(d.max())


# -- the kinds ---------------------------------------------------------------------------------

def _ambiguity(gaz: Gazetteer, idx: list[int], points: list[tuple[float, float]],
               settings: GeocodeSettings) -> tuple[str, float, str | None]:
    """For a name carried by several streets: (cap, extra uncertainty, reason if unusable)."""
    if len(idx) <= 1:
        return "A", 0.0, None
    spread = gaz.spread(points)
    koms = sorted({gaz.col["kommunekode"][i] for i in idx})
    if spread > settings.ambiguous_max_spread_m:
        return "none", 0.0, (f"ambiguous: the name is found {len(idx)} places "
                             f"(kommuner {', '.join(koms)}) up to {spread:.0f} m apart")
    return "C", spread / 2, None


def _match_address(gaz: Gazetteer, p: ParsedLocation, hint: str, s: GeocodeSettings) -> MatchResult:
    """Street + house number: exact number, else nearest number on the same street."""
    nm, cap, reason = gaz.find_street(p.street or "", p, hint, s)
    if nm is None:
        return _none(reason or "unknown street")
    best: list[tuple[int, int, str, float]] = []   # street, address row, quality, uncertainty
    streets = [(i, a) for i in nm.idx if (a := gaz.addresses.get(i)) is not None and len(a.tal)]
    found = [(i, a.find(p.husnr, p.letter)) for i, a in streets]
    exact_hits = [(i, k, "A", UNCERTAINTY_M["address_A"]) for i, k in found if k is not None]
    if not exact_hits:
        for i, a in streets:
            diff = np.abs(a.tal - p.husnr).astype(float)
            diff[a.tal < 0] = 1e9
            parity = (a.tal % 2) != (p.husnr % 2)
            k = int(np.argmin(diff + parity * 1000))
            d = float(diff[k])
            q = "B" if d <= 4 and not parity[k] else "C"
            unc = 15.0 + 10.0 * d if q == "B" else min(25.0 + 10.0 * d, s.street_uncertainty_cap_m)
            best.append((i, k, q, unc))
    else:
        best = exact_hits + [(i, -1, "C", 0.0) for i, k in found if k is None]
    if not best:
        return _match_street(gaz, p, hint, s, nm=nm, cap=cap,
                             why=f"no house numbers known on '{p.street}'")
    pool = exact_hits or best
    cand_cap, extra, why = _ambiguity(gaz, [b[0] for b in pool],
                                      [(gaz.addresses[b[0]].x[b[1]], gaz.addresses[b[0]].y[b[1]])
                                       for b in pool], s)
    if len(exact_hits) < len(best) and exact_hits and len(nm.idx) > 1:
        cand_cap = worst(cand_cap, "C")   # the name exists elsewhere, the number only here
    if why:
        return _none(why)
    i, k, q_num, unc = pool[0]
    a = gaz.addresses[i]
    method = "address" if q_num == "A" else "nearest_number"
    q = worst(nm.level, cap, cand_cap, q_num)
    if q == "B" and method == "address":
        unc = UNCERTAINTY_M["address_B"]
    if p.kind == "house_near":
        unc = max(unc, UNCERTAINTY_M["house_near"])
        method = "house_near" if method == "address" else method
    vejnavn, kommunekode = gaz.col["vejnavn"][i], gaz.col["kommunekode"][i]
    label = f"{vejnavn} {a.husnr(k)}, {a.postnr[k]} {a.postnrnavn[k]}".strip(" ,")
    notes = [n for n in (nm.note, f"nearest number {a.husnr(k)} for {p.husnr}{p.letter}"
                         if method == "nearest_number" else "",
                         f"{len(pool)} candidates" if len(pool) > 1 else "") if n]
    return MatchResult(q, float(a.x[k]), float(a.y[k]), kommunekode,
                       max(unc, extra), method, label, "; ".join(notes) or None)


def _match_street(gaz: Gazetteer, p: ParsedLocation, hint: str, s: GeocodeSettings, *,
                  nm: NameMatch | None = None, cap: str = "A", why: str | None = None,
                  name: str | None = None) -> MatchResult:
    """Street without a usable number: a point on the street, quality C."""
    name = name or p.street or ""
    if nm is None:
        nm, cap, reason = gaz.find_street(name, p, hint, s)
        if nm is None:
            if normalise(name) in gaz.towns or normalise(name) in DEFAULT_TOWNS:
                return _none("town only: a town is too coarse to place an accident")
            return _none(reason or f"unknown street '{name}'")
    pts = [(gaz.col["x"][i], gaz.col["y"][i]) for i in nm.idx]
    cand_cap, extra, amb = _ambiguity(gaz, nm.idx, pts, s)
    if amb:
        return _none(amb)
    i = nm.idx[0]
    length = gaz.col["length_m"][i]
    unc = min((length or 2 * s.street_uncertainty_cap_m) / 2, s.street_uncertainty_cap_m)
    notes = [n for n in (why or "street only, no house number", nm.note,
                         f"{len(nm.idx)} candidates" if len(nm.idx) > 1 else "") if n]
    return MatchResult("C", float(pts[0][0]), float(pts[0][1]), gaz.col["kommunekode"][i],
                       max(unc, extra), "street", gaz.street_label(i), "; ".join(notes))


def _meeting_points(gaz: Gazetteer, a: NameMatch, b: NameMatch, s: GeocodeSettings
                    ) -> tuple[list[tuple[float, float, str]], str]:
    """Where streets of match a meet streets of match b: junction nodes, else closest points."""
    sa = {(gaz.col["kommunekode"][i], gaz.col["vejkode"][i]) for i in a.idx}
    sb = {(gaz.col["kommunekode"][i], gaz.col["vejkode"][i]) for i in b.idx}
    ja = set().union(*(gaz.junctions_by_road.get(k, set()) for k in sa)) if sa else set()
    jb = set().union(*(gaz.junctions_by_road.get(k, set()) for k in sb)) if sb else set()
    both = sorted(ja & jb)
    if both:
        jx, jy, jk = gaz.jcol["x"], gaz.jcol["y"], gaz.jcol["kommunekode"]
        return [(jx[j], jy[j], jk[j]) for j in both], "junction"
    pts = []
    for i in a.idx:
        for k in b.idx:
            ga, gb = gaz.col["geom"][i], gaz.col["geom"][k]
            if ga is None or gb is None or ga.distance(gb) > s.junction_max_gap_m:
                continue
            line = shapely.shortest_line(ga, gb)
            mid = line.interpolate(0.5, normalized=True)
            pts.append((mid.x, mid.y, gaz.col["kommunekode"][i]))
    return pts, "junction_nearest"


def _match_junction(gaz: Gazetteer, p: ParsedLocation, hint: str, s: GeocodeSettings) -> MatchResult:
    """Two named streets: their shared junction node, or where their lines come within reach."""
    na, cap_a, reason_a = gaz.find_street(p.street or "", p, hint, s)
    nb, cap_b, reason_b = gaz.find_street(p.street2 or "", p, hint, s)
    if na is None and nb is None:
        return _none(f"unknown streets '{p.street}' and '{p.street2}'")
    if na is None or nb is None:
        known, missing = (p.street2, p.street) if na is None else (p.street, p.street2)
        r = _match_street(gaz, p, hint, s, nm=na or nb, cap=cap_a if na else cap_b,
                          name=known, why=f"'{missing}' not found; placed on '{known}'")
        return r
    pts, method = _meeting_points(gaz, na, nb, s)
    if not pts:
        return _none(f"'{p.street}' and '{p.street2}' do not meet in the gazetteer")
    spread = gaz.spread([(x, y) for x, y, _ in pts])
    if spread > s.ambiguous_max_spread_m:
        return _none(f"'{p.street}' and '{p.street2}' meet {len(pts)} places up to {spread:.0f} m apart")
    q = worst(na.level, nb.level, cap_a, cap_b, "B" if method == "junction_nearest" else "A")
    if spread > 50:
        q = worst(q, "C")
    x = float(np.mean([pt[0] for pt in pts])) if spread <= 50 else float(pts[0][0])
    y = float(np.mean([pt[1] for pt in pts])) if spread <= 50 else float(pts[0][1])
    unc = max(UNCERTAINTY_M[method], spread / 2)
    name_a = gaz.col["vejnavn"][na.idx[0]]
    name_b = gaz.col["vejnavn"][nb.idx[0]]
    notes = [n for n in (na.note, nb.note, f"{len(pts)} meeting points" if len(pts) > 1 else "") if n]
    return MatchResult(q, x, y, pts[0][2], unc, method, f"{name_a} / {name_b}", "; ".join(notes) or None)


def _match_landmark(gaz: Gazetteer, p: ParsedLocation, hint: str) -> MatchResult:
    """A named place from gazetteer.place, else not placed."""
    if gaz.places.empty or not p.landmark:
        return _none(f"landmark '{p.landmark or p.text}' not in the gazetteer")
    hits = gaz.places[gaz.places["navn_norm"] == normalise(p.landmark)]
    if hint and (hits["kommunekode"] == hint).any():
        hits = hits[hits["kommunekode"] == hint]
    if hits.empty:
        return _none(f"landmark '{p.landmark}' not in the gazetteer")
    spread = gaz.spread(list(zip(hits["x"], hits["y"])))
    if len(hits) > 1 and spread > 500:
        return _none(f"landmark '{p.landmark}' is found {len(hits)} places")
    h = hits.iloc[0]
    return MatchResult("B" if len(hits) == 1 else "C", float(h["x"]), float(h["y"]),
                       h["kommunekode"], max(UNCERTAINTY_M["place"], spread / 2), "place", h["navn"],
                       None)


def match_parsed(gaz: Gazetteer, p: ParsedLocation, hint: str, settings: GeocodeSettings) -> MatchResult:
    """Geocode one parsed location (see module doc for the quality rules)."""
    if p.kind == "blank":
        return _none("blank location text")
    if p.kind == "town":
        return _none("town only: a town is too coarse to place an accident")
    if p.kind == "road_km":
        return _none(f"road/km position (rute {p.road}) needs road stationing, not in the gazetteer")
    if p.kind == "landmark":
        return _match_landmark(gaz, p, hint)
    if p.kind in ("address", "house_near"):
        return _match_address(gaz, p, hint, settings)
    if p.kind == "junction":
        return _match_junction(gaz, p, hint, settings)
    return _match_street(gaz, p, hint, settings)


def normalise_hint(hint: object, kommune_names: dict[str, str] | None = None) -> str:
    """A kommune hint as a 4-digit code ('' when none): '561', '0561', 'Esbjerg'."""
    if hint is None or (isinstance(hint, float) and math.isnan(hint)):
        return ""
    h = str(hint).strip()
    if h.isdigit():
        return h.zfill(4)
    if h and kommune_names:
        folded = normalise(h.removesuffix(" Kommune").removesuffix(" kommune"))
        for code, name in kommune_names.items():
            if name and normalise(name) == folded:
                return code
    return ""


def _row(text: str, hint: str, r: MatchResult) -> tuple:
    return (text, hint, r.x, r.y, r.kommunekode, r.quality, r.uncertainty_m, r.method,
            r.matched, r.reason)


def _prefill_fuzzy(gaz: Gazetteer, todo: list[tuple[ParsedLocation, str]],
                   settings: GeocodeSettings) -> None:
    """Warm the fuzzy cache for the street names that :func:`match_parsed` will look up
    fuzzily in their first search area (no exact or folded hit there), in one batch per
    area (:meth:`Gazetteer.prefill_fuzzy`). Only a cache: the answers do not change."""
    queries: dict[tuple[str, str], set[int] | None] = {}
    for p, hint in todo:
        if p.kind not in ("address", "house_near", "street", "junction"):
            continue
        label, scope, _ = gaz.scopes(p, hint)[0]
        for name in (p.street, p.street2 if p.kind == "junction" else None):
            if not name:
                continue
            kb = compact(name)
            if not kb or (kb, label) in queries or (kb, label) in gaz._batch_cache:
                continue
            if any(scope is None or i in scope
                   for i in (*gaz.by_a.get(_a_key(name), ()), *gaz.by_b.get(kb, ()))):
                continue
            queries[(kb, label)] = scope
    if queries:
        gaz.prefill_fuzzy(queries, settings)


def _match_pairs(gaz: Gazetteer, pairs: list[tuple[str, str]], settings: GeocodeSettings,
                 towns: frozenset[str] | set[str], fast: bool = True) -> list[tuple]:
    """Parse and match (text, hint) pairs: one result row per pair.

    With ``fast`` the address-like texts that :mod:`skadestue.geocode.fast` can answer for
    certain are resolved in bulk; the rest go through :func:`match_parsed` one by one."""
    parsed: list[ParsedLocation | Exception] = []
    for text, hint in pairs:
        try:
            parsed.append(parse_location(text, towns))
        except Exception as exc:  # one odd text must not stop the night's run
            parsed.append(exc)
    answered: dict[int, tuple] = {}
    if fast:
        from skadestue.geocode.fast import fast_match
        ok = [j for j, p in enumerate(parsed) if isinstance(p, ParsedLocation)]
        try:
            sub = fast_match(gaz, [parsed[j] for j in ok], [pairs[j][1] for j in ok], settings)
            answered = {ok[j]: v for j, v in sub.items()}
        except Exception:
            log.exception("fast geocoding path failed; matching this batch text by text")
            answered = {}
    if fast:
        gaz.batch_fuzzy = True
        try:
            _prefill_fuzzy(gaz, [(p, pairs[j][1]) for j, p in enumerate(parsed)
                                 if j not in answered and isinstance(p, ParsedLocation)], settings)
        except Exception:
            log.exception("batched fuzzy look-up failed; matching this batch text by text")
            gaz.batch_fuzzy = False
    try:
        rows = []
        for j, (text, hint) in enumerate(pairs):
            hit = answered.get(j)
            if hit is not None:
                rows.append((text, hint, *hit))
                continue
            p = parsed[j]
            try:
                if isinstance(p, Exception):
                    raise p
                r = match_parsed(gaz, p, hint, settings)
            except Exception as exc:  # one odd text must not stop the night's run
                log.exception("geocoding failed for one text (kommune hint %r)", hint)
                r = _none(f"geocoder error: {type(exc).__name__}")
            rows.append(_row(text, hint, r))
    finally:
        gaz.batch_fuzzy = False
    return rows


#: The gazetteer a forked worker matches against (set in the parent just before the fork).
_WORKER_STATE: tuple | None = None


def _worker_chunk(pairs: list[tuple[str, str]]) -> list[tuple]:
    gaz, settings, towns, fast = _WORKER_STATE
    return _match_pairs(gaz, pairs, settings, towns, fast)


def _match_parallel(gaz: Gazetteer, pairs: list[tuple[str, str]], settings: GeocodeSettings,
                    towns: set[str], fast: bool = True) -> list[tuple]:
    """Split a big batch over forked workers that share the gazetteer copy-on-write."""
    global _WORKER_STATE
    n = settings.workers
    size = max(1000, len(pairs) // (n * 4) + 1)
    chunks = [pairs[i:i + size] for i in range(0, len(pairs), size)]
    _WORKER_STATE = (gaz, settings, towns, fast)
    # Keep the collector off the inherited gazetteer: a gc pass in a worker would touch (and
    # so copy) every page of it.
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(n) as pool:
            parts = pool.map(_worker_chunk, chunks, chunksize=1)
    finally:
        gc.unfreeze()
        _WORKER_STATE = None
    return [row for part in parts for row in part]


def geocode_frame(gaz: Gazetteer, texts: pd.DataFrame, settings: GeocodeSettings, *,
                  fast: bool = True) -> pd.DataFrame:
    """Geocode a frame of (location_text, kommunekode_hint); loops over DISTINCT pairs only.

    Batches of at least ``settings.parallel_min_texts`` distinct pairs are split over
    ``settings.workers`` forked processes (Linux). Returns one row per input row (same
    index), columns :data:`RESULT_COLUMNS`. ``fast=False`` matches every text one by one
    (the reference the fast path is tested against).
    """
    raw_hints = texts.get("kommunekode_hint", pd.Series([None] * len(texts), index=texts.index))
    hint_map = {h: normalise_hint(h, gaz.kommune_names) for h in pd.unique(raw_hints.astype(object))}
    df = pd.DataFrame({
        "location_text": texts["location_text"].fillna("").astype(str),
        "kommunekode_hint": raw_hints.astype(object).map(lambda h: hint_map.get(h, "")
                                                         if h == h else hint_map.get(None, "")),
    }, index=texts.index)
    distinct = df.drop_duplicates()
    towns = gaz.towns | DEFAULT_TOWNS
    pairs = list(zip(distinct["location_text"], distinct["kommunekode_hint"]))
    if fast and gaz._fast_index is None:
        from skadestue.geocode.fast import build_index
        gaz._fast_index = build_index(gaz)      # once, shared copy-on-write by the workers
    if settings.workers > 1 and len(pairs) >= settings.parallel_min_texts:
        rows = _match_parallel(gaz, pairs, settings, towns, fast)
    else:
        rows = _match_pairs(gaz, pairs, settings, towns, fast)
    result = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    # rows come back in the order of ``distinct``: its first-appearance numbering maps them back
    codes = df.groupby(["location_text", "kommunekode_hint"], sort=False).ngroup().to_numpy()
    out = result.iloc[codes].set_axis(df.index)
    return out.rename_axis(texts.index.name)[RESULT_COLUMNS]
