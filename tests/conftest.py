"""Shared test set-up: offline Prefect/GX environment and the path of the real geodata."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skadestue.runtime import prepare_environment

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

prepare_environment(REPO / ".prefect")
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "test-key-only-for-synthetic-people")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public geodata in ../shared/data (CI has it there too)."""
    if not SHARED_DATA.exists():
        raise RuntimeError(f"The shared test data is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_setup(shared_data):
    """Make ``demo_setup(out, scale=, years=, seed=)``: demo deliveries under ``out``, their
    gazetteer imported into ``out/warehouse.duckdb``, and settings pointing there.

    Returns ``(paths, settings, flow_kwargs)``; ``flow_kwargs`` are the nightly flow's path
    arguments. The real DAGI boundaries are used, as in `make demo`.
    """
    from geodata.importer import import_geodata
    from skadestue import db
    from skadestue.config import load_settings
    from skadestue.demo import generate_demo

    def setup(out: Path, *, scale: float, years: tuple[int, int], seed: int):
        paths = generate_demo(
            out, scale=scale, years=years, seed=seed,
            municipalities_geojson=shared_data / "boundaries" / "dagi_kommuner.geojson",
        )
        settings = load_settings(
            None, inbox=out / "inbox", warehouse=out / "warehouse.duckdb",
            publish_dir=out / "publish", quality_dir=out / "quality",
        )
        with db.warehouse(settings) as con:
            import_geodata(
                con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
                municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson,
                places=paths.places_csv,
            )
        flow_kwargs = dict(
            inbox=str(settings.inbox), warehouse=str(settings.warehouse),
            publish_dir=str(settings.publish_dir), quality_dir=str(settings.quality_dir),
        )
        return paths, settings, flow_kwargs

    return setup


@pytest.fixture(scope="session")
def _spatial_con():
    """One DuckDB connection with spatial loaded (slow) for the whole session."""
    from skadestue.db import connect

    c = connect(":memory:", migrate_schema=False)
    yield c
    c.close()


_catalogs = iter(range(1_000_000))


@pytest.fixture()
def fresh_warehouse(_spatial_con):
    """A fresh, fully migrated in-memory warehouse (an attached catalog made the default)."""
    from skadestue.db import migrate

    name = f"wh_{next(_catalogs)}"
    _spatial_con.execute(f"ATTACH ':memory:' AS {name}")
    _spatial_con.execute(f"USE {name}")
    migrate(_spatial_con)
    yield _spatial_con
    _spatial_con.execute("USE memory")
    _spatial_con.execute(f"DETACH {name}")
