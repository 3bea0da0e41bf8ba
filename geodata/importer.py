"""Import the Danish reference geodata (inputs.md §3) into ``gazetteer.*`` (EPSG:25832).

Each import replaces every gazetteer table inside one transaction (a failed import leaves the
previous gazetteer in place), then derives ``gazetteer.street`` and ``gazetteer.junction``.
The geocode cache ``core.geocode_result`` is cleared when the input files changed.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
from pathlib import Path

import duckdb

from geodata.junctions import build_junctions, build_streets
from skadestue.geocode.normalise import normalise

log = logging.getLogger(__name__)

GAZETTEER_TABLES = ("municipality", "postcode", "address", "road_segment", "street",
                    "junction", "place")

#: Canonical address column -> accepted names in DAWA exports (lower case).
ADDRESS_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "adgangsadresseid", "id_lokalid"),
    "kommunekode": ("kommunekode", "kommune"),
    "vejkode": ("vejkode",),
    "vejnavn": ("vejnavn", "adresseringsvejnavn"),
    "husnr": ("husnr", "husnummer", "husnummertekst"),
    "postnr": ("postnr", "postnummer"),
    "postnrnavn": ("postnrnavn", "postdistrikt", "postnummernavn"),
    "supplerendebynavn": ("supplerendebynavn",),
    "x": ("etrs89_oest", "adgangspunkt_etrs89koordinat_oest", "etrs89koordinat_oest", "x"),
    "y": ("etrs89_nord", "adgangspunkt_etrs89koordinat_nord", "etrs89koordinat_nord", "y"),
}
ADDRESS_REQUIRED = ("id", "kommunekode", "vejkode", "husnr", "x", "y")
ROAD_NAME_FIELDS = ("vejnavn", "vejnavn_dawa", "navn", "vejnavn_adr")
ROAD_ID_FIELDS = ("id_lokalid", "segment_id", "objectid", "ogc_fid", "fid")


class GeodataError(ValueError):
    """A reference file that cannot be imported, with what to do about it."""


def _sql_path(path: Path) -> str:
    """A path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _fingerprint(paths: dict[str, Path | None]) -> str:
    """sha256 over the names and bytes of the input files."""
    h = hashlib.sha256()
    for name, path in sorted(paths.items()):
        h.update(name.encode())
        if path is None:
            continue
        with Path(path).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def sniff_csv(path: Path) -> tuple[str, str]:
    """(delimiter, DuckDB encoding) of a CSV: ``;`` or ``,``; UTF-8 (BOM ok) or Windows-1252.

    Streams the file in 1 MB chunks (a national address file is hundreds of MB): UTF-8 when
    every byte decodes as UTF-8, else Windows-1252."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    head = b""
    encoding = "utf-8"
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            if len(head) < 65536:
                head += chunk[: 65536 - len(head)]
            if encoding == "utf-8":
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    encoding = "latin-1"  # same code points as cp1252 for æ ø å
                    break
        if encoding == "utf-8":
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                encoding = "latin-1"
    if encoding == "utf-8":
        text = head.decode("utf-8-sig", errors="ignore")
    else:
        text = head.decode("cp1252", errors="replace")
    header = text.splitlines()[0] if text else ""
    delim = ";" if header.count(";") > header.count(",") else ","
    return delim, encoding


def _read_csv_table(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[str]:
    """Load a CSV as all-text into a temp table with lower-case, trimmed column names."""
    if not Path(path).exists():
        raise GeodataError(f"{path}: file not found")
    delim, encoding = sniff_csv(path)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv({_sql_path(path)}, "
        f"delim='{delim}', header=true, all_varchar=true, encoding='{encoding}', "
        "null_padding=true)"
    )
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    for c in cols:
        clean = c.strip().lstrip("\ufeff").lower()
        if clean != c:
            con.execute(f'ALTER TABLE {table} RENAME COLUMN "{c}" TO "{clean}"')
    return [c.strip().lstrip("\ufeff").lower() for c in cols]


def _csv_source(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, dict[str, str]]:
    """``read_csv(...)`` of a CSV as all-text (not materialised) and its columns as
    {lower-case trimmed name: name in the file}, for one streaming pass over a big file."""
    if not Path(path).exists():
        raise GeodataError(f"{path}: file not found")
    delim, encoding = sniff_csv(path)
    src = (f"read_csv({_sql_path(path)}, delim='{delim}', header=true, all_varchar=true, "
           f"encoding='{encoding}', null_padding=true)")
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    return src, {c.strip().lstrip("\ufeff").lower(): c for c in cols}


def _pick(cols: list[str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` present in ``cols`` (case-insensitive), as found."""
    lower = {c.lower(): c for c in cols}
    return next((lower[n] for n in names if n in lower), None)


def _geometry_columns(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[str], str]:
    """Attribute columns and the geometry column of a temp table read with ST_Read."""
    rows = con.execute(f"DESCRIBE {table}").fetchall()
    geom = next((r[0] for r in rows if str(r[1]).upper().startswith("GEOMETRY")), None)
    if geom is None:
        raise GeodataError(f"{table}: no geometry column found")
    return [r[0] for r in rows if r[0] != geom], geom


def _to_25832(con: duckdb.DuckDBPyConnection, table: str, geom: str) -> str:
    """SQL expression turning ``geom`` into 2-D EPSG:25832 (lon/lat input is transformed)."""
    xmax = con.execute(f'SELECT max(abs(ST_XMax("{geom}"))) FROM {table}').fetchone()[0]
    expr = f'ST_Force2D("{geom}")'
    if xmax is not None and xmax <= 180:
        expr = f"ST_Transform({expr}, 'EPSG:4326', 'EPSG:25832', always_xy := true)"
    return expr


def _load_boundaries(
    con: duckdb.DuckDBPyConnection, path: Path, table: str,
    code_fields: tuple[str, ...], name_fields: tuple[str, ...], code_sql: str,
) -> int:
    """A DAGI boundary layer -> ``gazetteer.<table>(code, name, geom)``, dissolved per code
    (DAGI has several polygons per unit), reprojected to EPSG:25832. ``code_sql`` formats
    the code column ``{c}``."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _g_bound AS SELECT * FROM ST_Read({_sql_path(path)})")
    cols, geom = _geometry_columns(con, "_g_bound")
    code = _pick(cols, code_fields)
    name = _pick(cols, name_fields)
    if code is None:
        raise GeodataError(f"{path}: no {'/'.join(code_fields[:2])} field (found {cols})")
    name_sql = f'any_value("{name}")' if name else "NULL"
    con.execute(f"""
        INSERT INTO gazetteer.{table}
        SELECT {code_sql.format(c=f'"{code}"')}, {name_sql},
               ST_Union_Agg(ST_MakeValid({_to_25832(con, '_g_bound', geom)}))
        FROM _g_bound WHERE "{code}" IS NOT NULL GROUP BY 1
    """)
    return con.execute(f"SELECT count(*) FROM gazetteer.{table}").fetchone()[0]


def load_municipalities(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """DAGI kommuner -> gazetteer.municipality (4-digit kommunekode)."""
    con.execute("DELETE FROM gazetteer.municipality")
    return _load_boundaries(
        con, path, "municipality",
        ("KOMKODE", "komkode", "kommunekode", "kode", "lau_1"), ("KOMNAVN", "komnavn", "navn", "name"),
        "lpad(trim({c}), 4, '0')",
    )


def load_postcodes(con: duckdb.DuckDBPyConnection, path: Path | None) -> int:
    """DAGI postnumre -> gazetteer.postcode; no file, no postcodes."""
    con.execute("DELETE FROM gazetteer.postcode")
    if path is None:
        return 0
    return _load_boundaries(
        con, path, "postcode",
        ("POSTNR_TXT", "postnr_txt", "postnr", "postnummer", "nr"), ("POSTBYNAVN", "postbynavn", "navn", "postnrnavn"),
        "trim(CAST({c} AS VARCHAR))",
    )


def load_roads(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Road centre lines -> gazetteer.road_segment (Z dropped, multi-lines split into parts)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _g_road AS SELECT * FROM ST_Read({_sql_path(path)})")
    cols, geom = _geometry_columns(con, "_g_road")
    kom = _pick(cols, ("KOMMUNEKODE", "kommunekode", "komkode"))
    vej = _pick(cols, ("VEJKODE", "vejkode"))
    if kom is None or vej is None:
        raise GeodataError(f"{path}: road file needs KOMMUNEKODE and VEJKODE (found {cols})")
    name = _pick(cols, ROAD_NAME_FIELDS)
    if name is None:
        log.warning("%s: no road-name field (%s); names come from the addresses only",
                    path, ", ".join(ROAD_NAME_FIELDS))
    klasse = _pick(cols, ("VEJKLASSE", "vejklasse"))
    start = _pick(cols, ("STARTKNUDE", "startknude"))
    slut = _pick(cols, ("SLUTKNUDE", "slutknude"))
    seg_id = _pick(cols, ROAD_ID_FIELDS)

    def col(c: str | None) -> str:
        return f'nullif(trim(CAST("{c}" AS VARCHAR)), \'\')' if c else "NULL"

    con.execute("DELETE FROM gazetteer.road_segment")
    con.execute(f"""
        INSERT INTO gazetteer.road_segment
        WITH src AS (
            SELECT {col(seg_id) if seg_id else 'CAST(row_number() OVER () AS VARCHAR)'} AS sid,
                   lpad({col(kom)}, 4, '0') AS kommunekode,
                   lpad({col(vej)}, 4, '0') AS vejkode,
                   {col(name)} AS vejnavn, {col(klasse)} AS vejklasse,
                   {col(start)} AS startknude, {col(slut)} AS slutknude,
                   unnest(ST_Dump({_to_25832(con, '_g_road', geom)})) AS part
            FROM _g_road WHERE "{kom}" IS NOT NULL
        ), parts AS (
            SELECT *, part.geom AS g,
                   sid || CASE WHEN len(part.path) > 0 AND part.path[1] > 1
                               THEN '_' || part.path[1] ELSE '' END AS sid2
            FROM src WHERE ST_GeometryType(part.geom) = 'LINESTRING'
        )
        SELECT sid2 || CASE WHEN row_number() OVER (PARTITION BY sid2 ORDER BY startknude) > 1
                            THEN '#' || row_number() OVER (PARTITION BY sid2 ORDER BY startknude)
                            ELSE '' END,
               kommunekode, vejkode, vejnavn, vejklasse, startknude, slutknude,
               ST_Length(g), g
        FROM parts
    """)
    return con.execute("SELECT count(*) FROM gazetteer.road_segment").fetchone()[0]


def _road_names_from(con: duckdb.DuckDBPyConnection, vejnavne: Path | None) -> str:
    """A temp table ``_g_vejnavn(kommunekode, vejkode, vejnavn)``: from the vejnavne CSV if
    given, else the most common name per road in the road segments."""
    if vejnavne is not None:
        cols = _read_csv_table(con, vejnavne, "_g_vejnavn_src")
        kom = _pick(cols, ("kommunekode", "kommune"))
        kode = _pick(cols, ("kode", "vejkode"))
        navn = _pick(cols, ("navn", "vejnavn"))
        if not (kom and kode and navn):
            raise GeodataError(f"{vejnavne}: needs kommunekode, kode/vejkode, navn (found {cols})")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _g_vejnavn AS
            SELECT lpad(trim("{kom}"), 4, '0') AS kommunekode, lpad(trim("{kode}"), 4, '0') AS vejkode,
                   any_value(trim("{navn}")) AS vejnavn
            FROM _g_vejnavn_src WHERE nullif(trim("{navn}"), '') IS NOT NULL GROUP BY 1, 2""")
    else:
        con.execute("""CREATE OR REPLACE TEMP TABLE _g_vejnavn AS
            SELECT kommunekode, vejkode, mode(vejnavn) AS vejnavn FROM gazetteer.road_segment
            WHERE vejnavn IS NOT NULL GROUP BY 1, 2""")
    return "_g_vejnavn"


def load_addresses(con: duckdb.DuckDBPyConnection, path: Path,
                   vejnavne: Path | None = None) -> dict[str, int]:
    """DAWA access addresses -> gazetteer.address. Call after :func:`load_roads` (road names
    fill a missing ``vejnavn``). Returns loaded and skipped counts."""
    src, colmap = _csv_source(con, path)
    cols = list(colmap)
    found = {k: _pick(cols, names) for k, names in ADDRESS_COLUMNS.items()}
    missing = [k for k in ADDRESS_REQUIRED if found[k] is None]
    if missing:
        raise GeodataError(
            f"{path}: address file lacks {missing}; expected DAWA columns such as "
            f"{[ADDRESS_COLUMNS[k][:2] for k in missing]} (found {cols})")

    def col(k: str) -> str:
        if not found[k]:
            return "NULL"
        name = colmap[found[k]].replace('"', '""')
        return f'nullif(trim("{name}"), \'\')'

    name_join, name_sql = "", "vejnavn0"
    if found["vejnavn"] is None:
        names = _road_names_from(con, vejnavne)
        name_join = f"LEFT JOIN {names} n USING (kommunekode, vejkode)"
        name_sql = "n.vejnavn"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _g_addr2 AS
        SELECT {col('id')} AS id, lpad({col('kommunekode')}, 4, '0') AS kommunekode,
               lpad({col('vejkode')}, 4, '0') AS vejkode, {col('vejnavn')} AS vejnavn0,
               upper(replace({col('husnr')}, ' ', '')) AS husnr,
               {col('postnr')} AS postnr, {col('postnrnavn')} AS postnrnavn,
               {col('supplerendebynavn')} AS supplerendebynavn,
               TRY_CAST(replace({col('x')}, ',', '.') AS DOUBLE) AS x,
               TRY_CAST(replace({col('y')}, ',', '.') AS DOUBLE) AS y
        FROM {src}""")
    con.execute("DELETE FROM gazetteer.address")
    con.execute(f"""
        INSERT INTO gazetteer.address
        SELECT id, kommunekode, vejkode, {name_sql},
               husnr, TRY_CAST(regexp_extract(husnr, '^[0-9]+') AS INTEGER),
               regexp_extract(husnr, '[A-Z]+$'), postnr, postnrnavn, supplerendebynavn, x, y
        FROM _g_addr2 {name_join}
        WHERE id IS NOT NULL AND kommunekode IS NOT NULL AND vejkode IS NOT NULL
          AND x IS NOT NULL AND y IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY id) = 1
    """)
    read = con.execute("SELECT count(*) FROM _g_addr2").fetchone()[0]
    loaded = con.execute("SELECT count(*) FROM gazetteer.address").fetchone()[0]
    unnamed = con.execute("SELECT count(*) FROM gazetteer.address WHERE vejnavn IS NULL").fetchone()[0]
    if read != loaded:
        log.warning("%s: %d of %d addresses skipped (no id, kommunekode, vejkode or "
                    "coordinates, or a duplicate id)", path, read - loaded, read)
    if unnamed:
        log.warning("%s: %d addresses have no street name (not in the vejnavne/road data); "
                    "they cannot be matched by name", path, unnamed)
    return {"address": loaded, "address_skipped": read - loaded, "address_unnamed": unnamed}


def load_places(con: duckdb.DuckDBPyConnection, path: Path | None) -> int:
    """Optional landmarks CSV (name/navn, x, y[, kommunekode]) -> gazetteer.place."""
    con.execute("DELETE FROM gazetteer.place")
    if path is None:
        return 0
    cols = _read_csv_table(con, path, "_g_place")
    name = _pick(cols, ("name", "navn", "stednavn"))
    x, y = _pick(cols, ("x", "etrs89_oest", "oest")), _pick(cols, ("y", "etrs89_nord", "nord"))
    kom = _pick(cols, ("kommunekode",))
    if not (name and x and y):
        raise GeodataError(f"{path}: place file needs name, x, y (EPSG:25832) (found {cols})")
    df = con.execute(f"""
        SELECT trim("{name}") AS navn, {f'lpad(trim("{kom}"), 4, {chr(39)}0{chr(39)})' if kom else 'NULL'} AS kommunekode,
               TRY_CAST("{x}" AS DOUBLE) AS x, TRY_CAST("{y}" AS DOUBLE) AS y
        FROM _g_place WHERE nullif(trim("{name}"), '') IS NOT NULL""").df()
    df = df.dropna(subset=["x", "y"])
    df["navn_norm"] = df["navn"].map(normalise)
    con.register("_g_place_df", df)
    con.execute("INSERT INTO gazetteer.place SELECT navn, navn_norm, kommunekode, x, y FROM _g_place_df")
    con.unregister("_g_place_df")
    return len(df)


def import_geodata(
    con: duckdb.DuckDBPyConnection,
    *,
    addresses: Path,
    roads: Path,
    municipalities: Path,
    postcodes: Path | None = None,
    places: Path | None = None,
    vejnavne: Path | None = None,
) -> dict[str, int]:
    """Replace the gazetteer with the given files; returns row counts per table.

    ``vejnavne`` (DAWA ``Vejnavn.CSV``) names the streets of a raw address file without
    ``vejnavn``; without it the road file's names are used. Runs in one transaction.
    """
    paths = {"addresses": addresses, "roads": roads, "municipalities": municipalities,
             "postcodes": postcodes, "places": places, "vejnavne": vejnavne}
    for key, p in paths.items():
        if p is not None and not Path(p).exists():
            raise GeodataError(f"{key}: file {p} not found")
    fingerprint = _fingerprint(paths)
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        counts["municipality"] = load_municipalities(con, Path(municipalities))
        counts["postcode"] = load_postcodes(con, Path(postcodes) if postcodes else None)
        counts["road_segment"] = load_roads(con, Path(roads))
        counts.update(load_addresses(con, Path(addresses), Path(vejnavne) if vejnavne else None))
        counts["place"] = load_places(con, Path(places) if places else None)
        counts["street"] = build_streets(con)
        counts["junction"] = build_junctions(con)
        last = con.execute(
            "SELECT fingerprint FROM gazetteer.import_log ORDER BY imported_at DESC LIMIT 1"
        ).fetchone()
        cleared = 0
        if last is None or last[0] != fingerprint:
            cleared = con.execute("SELECT count(*) FROM core.geocode_result").fetchone()[0]
            con.execute("DELETE FROM core.geocode_result")
        counts["geocode_cache_cleared"] = cleared
        con.execute(
            "INSERT INTO gazetteer.import_log(fingerprint, sources, counts) VALUES (?, ?, ?)",
            [fingerprint, json.dumps({k: str(v) if v else None for k, v in paths.items()}),
             json.dumps(counts)],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    log.info("gazetteer imported: %s", counts)
    return counts


def gazetteer_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row counts of the gazetteer tables (for reports and tests)."""
    return {t: con.execute(f"SELECT count(*) FROM gazetteer.{t}").fetchone()[0]
            for t in GAZETTEER_TABLES}

