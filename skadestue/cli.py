"""The ``skadestue`` command line: import reference data, run a night, run the demo."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from skadestue.runtime import prepare_environment

prepare_environment()

app = typer.Typer(add_completion=False, help="Traffic-injury registration pipeline (skadestue + politi).")
geodata_app = typer.Typer(add_completion=False, help="Reference geodata: addresses, roads, boundaries.")
app.add_typer(geodata_app, name="geodata")
console = Console(width=max(Console().width, 120))


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )
    # Prefect's client logs every HTTP call to its local server at INFO: noise for an operator.
    for noisy in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@geodata_app.command("import")
def geodata_import(
    addresses: Path = typer.Option(..., exists=True, help="DAWA access addresses (CSV, ; or ,)."),
    roads: Path = typer.Option(..., exists=True, help="Road centre lines (GeoJSON/GeoPackage, EPSG:25832)."),
    municipalities: Path = typer.Option(..., exists=True, help="DAGI kommuner (GeoJSON)."),
    postcodes: Optional[Path] = typer.Option(None, exists=True, help="DAGI postnumre (GeoJSON)."),
    places: Optional[Path] = typer.Option(None, exists=True, help="Place names / landmarks (CSV: name, x, y)."),
    vejnavne: Optional[Path] = typer.Option(
        None, exists=True, help="DAWA vejnavne CSV, for address files without a vejnavn column."
    ),
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB file."),
    config: Optional[Path] = typer.Option(None, help="skadestue.toml"),
    verbose: bool = False,
) -> None:
    """Build the gazetteer (addresses, streets, junctions, boundaries) in the warehouse."""
    from geodata.importer import import_geodata
    from skadestue import db
    from skadestue.config import load_settings

    _logging(verbose)
    settings = load_settings(config, warehouse=warehouse)
    with console.status("Importing reference geodata ..."), db.warehouse(settings) as con:
        counts = import_geodata(
            con, addresses=addresses, roads=roads, municipalities=municipalities, postcodes=postcodes,
            places=places, vejnavne=vejnavne,
        )
    table = Table(title=f"Gazetteer in {settings.warehouse}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)


@app.command()
def run(
    inbox: Optional[Path] = typer.Option(None, help="Inbox folder (default data/inbox)."),
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB (default data/warehouse.duckdb)."),
    publish: Optional[Path] = typer.Option(None, help="Publish folder (default data/publish)."),
    config: Optional[Path] = typer.Option(None, help="skadestue.toml"),
    verbose: bool = False,
) -> None:
    """One nightly run as a Prefect flow: ingest, geocode, link, validate, hotspots, publish."""
    from skadestue.config import MissingPseudonymKey, load_settings

    _logging(verbose)
    settings = load_settings(config, inbox=inbox, warehouse=warehouse, publish_dir=publish)
    try:
        settings.require_pseudonym_key()
    except MissingPseudonymKey as exc:
        console.print(f"[red]Refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None
    summary = _run_flow(settings, config)
    print_summary(summary, settings)


def _run_flow(settings, config: Path | None) -> dict:
    from flows.nightly import nightly

    console.print(
        f"Nightly run: inbox [bold]{settings.inbox}[/bold] → warehouse [bold]{settings.warehouse}[/bold] "
        f"(Prefect home {os.environ['PREFECT_HOME']}; the first start of Prefect's local server can "
        "take a minute)"
    )
    return nightly(
        inbox=str(settings.inbox),
        warehouse=str(settings.warehouse),
        publish_dir=str(settings.publish_dir),
        quality_dir=str(settings.quality_dir),
        config=str(config) if config else None,
    )


@app.command()
def demo(
    out: Path = typer.Option(Path("data/demo"), help="Folder for the demo data, warehouse and layers."),
    scale: float = typer.Option(1.0, help="Volume multiplier (1 = the region's yearly volumes)."),
    seed: int = typer.Option(7, help="Random seed of the generator."),
    police_reporting: float = typer.Option(
        1.0, help="How often police register non-fatal accidents (1: ~25 % of ER casualties; "
        "0.3: the region's ~210 police injury accidents a year)."
    ),
    municipalities: Optional[Path] = typer.Option(
        None, help="Real DAGI kommuner GeoJSON to use instead of synthetic boundaries."
    ),
    verbose: bool = False,
) -> None:
    """Generate the synthetic demo deliveries and gazetteer, then run one night on them."""
    from geodata.importer import import_geodata
    from skadestue import db
    from skadestue.config import DEMO_PSEUDONYM_KEY, load_settings
    from skadestue.demo import generate_demo

    _logging(verbose)
    if not os.environ.get("SKADESTUE_PSEUDONYM_KEY"):
        os.environ["SKADESTUE_PSEUDONYM_KEY"] = DEMO_PSEUDONYM_KEY
        console.print("[yellow]Using the built-in DEMO pseudonym key (never use it for real data).[/yellow]")
    out = out.resolve()
    settings = load_settings(
        None,
        inbox=out / "inbox",
        warehouse=out / "warehouse.duckdb",
        publish_dir=out / "publish",
        quality_dir=out / "quality",
    )
    if settings.warehouse.exists():
        settings.warehouse.unlink()  # the demo always starts from an empty warehouse
    with console.status("Generating demo data ..."):
        paths = generate_demo(
            out, scale=scale, seed=seed, municipalities_geojson=municipalities, police_reporting=police_reporting
        )
    console.print(f"Demo data written to {out}")
    with console.status("Importing the demo gazetteer ..."), db.warehouse(settings) as con:
        import_geodata(
            con,
            addresses=paths.addresses_csv,
            roads=paths.roads_geojson,
            municipalities=paths.municipalities_geojson,
            postcodes=paths.postcodes_geojson,
            places=paths.places_csv,
        )
    summary = _run_flow(settings, None)
    print_summary(summary, settings)


@app.command()
def status(
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB."),
    runs: int = typer.Option(10, help="How many recent runs to show."),
) -> None:
    """The most recent runs and their row accounting."""
    from skadestue import db
    from skadestue.config import load_settings

    settings = load_settings(None, warehouse=warehouse)
    with db.warehouse(settings, read_only=True) as con:
        rows = con.execute(
            "SELECT r.run_id, r.status, r.started_at, r.finished_at, "
            "coalesce(sum(d.rows_read),0), coalesce(sum(d.rows_loaded),0), coalesce(sum(d.rows_quarantined),0) "
            "FROM ops.run r LEFT JOIN ops.delivery d USING (run_id) GROUP BY ALL ORDER BY r.started_at DESC LIMIT ?",
            [runs],
        ).fetchall()
    table = Table(title=f"Runs in {settings.warehouse}")
    for col in ("run", "status", "started", "finished", "read", "loaded", "quarantined"):
        table.add_column(col)
    for r in rows:
        table.add_row(*[str(v) for v in r])
    console.print(table)


def print_summary(summary: dict, settings) -> None:
    """The operator's summary: rows, casualties, links, top hotspots, where things landed."""
    from skadestue import db

    table = Table(title=f"Run {summary['run_id']}", show_header=False)
    for label, key in [
        ("rows read", "rows_read"), ("rows loaded", "rows_loaded"), ("rows quarantined", "rows_quarantined"),
        ("deliveries loaded", "deliveries_loaded"), ("files skipped (already loaded)", "files_skipped"),
        ("files rejected", "files_rejected"), ("ER contacts", "er_contacts"),
        ("police accidents", "police_accidents"), ("casualties", "casualties"),
        ("links (ER ↔ police)", "links"),
    ]:
        table.add_row(label, f"{summary.get(key, 0):,}")
    table.add_row("casualties by source", ", ".join(f"{k}: {v:,}" for k, v in summary["casualties_by_source"].items()))
    console.print(table)
    with db.warehouse(settings, read_only=True) as con:
        top = con.execute(db.query("top_junction_hotspots"), [5]).fetchall()
    hot = Table(title="Top junction hotspots over the analysis window (rule = at least "
                f"{settings.hotspot.rule_min_accidents} accidents)")
    for col in ("kommune", "junction", "roads", "period", "accidents", "casualties", "score", "rule"):
        hot.add_column(col, overflow="fold")
    for r in top:
        hot.add_row(*[str(v) for v in r])
    console.print(hot)
    console.print(f"Warehouse:        {settings.warehouse}")
    console.print(f"Published layers: {settings.publish_dir}")
    console.print(f"Quality report:   {settings.quality_dir / 'index.html'} (Great Expectations Data Docs)")


if __name__ == "__main__":
    app()
