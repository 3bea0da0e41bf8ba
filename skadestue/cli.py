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
from skadestue.plan.cli import plan_app  # noqa: E402  (the `skadestue plan ...` commands)

app.add_typer(plan_app, name="plan")
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
    prefect: bool = typer.Option(
        True, "--prefect/--no-prefect",
        help="Run as a Prefect flow (default; ephemeral server unless PREFECT_API_URL is set) or as plain "
        "Python (system cron / systemd timer without Prefect).",
    ),
    full: bool = typer.Option(
        False, "--full", help="Rebuild every stage from scratch instead of only what changed since the last run.",
    ),
    verbose: bool = False,
) -> None:
    """One nightly run: ingest, geocode, link, validate, hotspots, publish, maps (one run at a time).

    Exit status: 0 done, 1 failed (the stage and file are printed and kept in ops.run),
    2 not configured, 75 another run holds the warehouse (nothing was changed).
    """
    from skadestue.config import MissingPseudonymKey, load_settings
    from skadestue.db import RunLocked

    _logging(verbose)
    settings = load_settings(config, inbox=inbox, warehouse=warehouse, publish_dir=publish)
    try:
        settings.require_pseudonym_key()
    except MissingPseudonymKey as exc:
        console.print(f"[red]Refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        summary = _run_flow(settings, config, use_prefect=prefect, full=full)
    except RunLocked as exc:
        console.print(f"[yellow]Not started:[/yellow] {exc}")
        raise typer.Exit(75) from None
    except Exception as exc:  # noqa: BLE001 - the operator gets the stage and file, not a traceback
        console.print(f"[red]Run failed:[/red] {_last_failure(settings) or exc}")
        console.print("Yesterday's published layers are unchanged. `skadestue status` shows the run's stages.")
        raise typer.Exit(1) from None
    print_summary(summary, settings)


def _last_failure(settings) -> str | None:
    """The message the failed run left in ops.run (names the stage, and the file for ingest)."""
    from skadestue import db

    try:
        with db.warehouse(settings, read_only=True) as con:
            row = con.execute(
                "SELECT run_id, message FROM ops.run WHERE status = 'failed' ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
    except Exception:  # noqa: BLE001
        return None
    return f"run {row[0]}: {row[1]}" if row else None


def _run_flow(settings, config: Path | None, use_prefect: bool = True, full: bool = False) -> dict:
    from flows.nightly import nightly, run_nightly

    kwargs = dict(
        inbox=str(settings.inbox),
        warehouse=str(settings.warehouse),
        publish_dir=str(settings.publish_dir),
        quality_dir=str(settings.quality_dir),
        config=str(config) if config else None,
        full=full,
    )
    if not use_prefect:
        console.print(f"Nightly run (without Prefect): inbox [bold]{settings.inbox}[/bold] → warehouse "
                      f"[bold]{settings.warehouse}[/bold]")
        return run_nightly(**kwargs)
    console.print(
        f"Nightly run: inbox [bold]{settings.inbox}[/bold] → warehouse [bold]{settings.warehouse}[/bold] "
        f"(Prefect home {os.environ['PREFECT_HOME']}; the first start of Prefect's local server can "
        "take a minute)"
    )
    return nightly(**kwargs)


@app.command()
def serve(
    inbox: Optional[Path] = typer.Option(None, help="Inbox folder (default data/inbox)."),
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB (default data/warehouse.duckdb)."),
    publish: Optional[Path] = typer.Option(None, help="Publish folder (default data/publish)."),
    config: Optional[Path] = typer.Option(None, help="skadestue.toml"),
    cron: Optional[str] = typer.Option(None, help="Cron schedule (default ops.schedule_cron: 0 2 * * *)."),
    timezone: Optional[str] = typer.Option(None, help="Time zone of the schedule (default Europe/Copenhagen)."),
    name: Optional[str] = typer.Option(None, help="Deployment name (default ops.deployment_name: nightly)."),
    verbose: bool = False,
) -> None:
    """Serve the nightly flow as a scheduled Prefect deployment until stopped (Ctrl-C).

    Needs a Prefect server: `prefect server start` and PREFECT_API_URL pointing at it
    (see deploy/README.md). Flow runs inherit this process's environment, so
    SKADESTUE_PSEUDONYM_KEY must be set here; it is never stored in Prefect.
    """
    from prefect.schedules import Cron

    from flows.nightly import nightly
    from skadestue.config import MissingPseudonymKey, load_settings

    _logging(verbose)
    settings = load_settings(config, inbox=inbox, warehouse=warehouse, publish_dir=publish)
    try:
        settings.require_pseudonym_key()
    except MissingPseudonymKey as exc:
        console.print(f"[red]Refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None
    if not os.environ.get("PREFECT_API_URL"):
        console.print("[yellow]PREFECT_API_URL is not set: serving against a temporary local server that stops "
                      "with this process. For a real schedule start `prefect server start` and set "
                      "PREFECT_API_URL (deploy/README.md).[/yellow]")
    cron = cron or settings.ops.schedule_cron
    timezone = timezone or settings.ops.schedule_timezone
    name = name or settings.ops.deployment_name
    parameters = {
        "inbox": str(Path(settings.inbox).resolve()),
        "warehouse": str(Path(settings.warehouse).resolve()),
        "publish_dir": str(Path(settings.publish_dir).resolve()),
        "quality_dir": str(Path(settings.quality_dir).resolve()),
        "config": str(config.resolve()) if config else None,
    }
    console.print(f"Serving deployment [bold]skadestue-nightly/{name}[/bold]: cron '{cron}' ({timezone}), "
                  f"warehouse {parameters['warehouse']}")
    nightly.serve(
        name=name, schedule=Cron(cron, timezone=timezone), parameters=parameters, limit=1,
        description="The nightly skadestue run (one at a time; the run lock guards the warehouse too).",
        tags=["skadestue"],
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
        from skadestue.plan import import_plan

        import_plan(con, paths.plan_geojson)  # the demo's traffic-safety plan, joined by the run
    summary = _run_flow(settings, None)
    print_summary(summary, settings)


@app.command()
def status(
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB."),
    inbox: Optional[Path] = typer.Option(None, help="Inbox folder."),
    config: Optional[Path] = typer.Option(None, help="skadestue.toml"),
    runs: int = typer.Option(10, help="How many recent runs to show."),
) -> None:
    """The most recent runs (status, rows, time, failed stage), the last run's stages, and what
    waits in the inbox. Never blocks a running night: while one holds the warehouse, it says which."""
    import duckdb

    from skadestue import db, ops
    from skadestue.config import load_settings

    settings = load_settings(config, warehouse=warehouse, inbox=inbox)
    holder = db.lock_holder(settings.warehouse)
    con = None
    if holder is not None:
        # Opening the file now (even read-only) would block the run's next connection.
        console.print(f"[yellow]A run is in progress:[/yellow] {db.describe_holder(holder)}. "
                      "Its stages are shown when it ends.")
    elif not Path(settings.warehouse).exists():
        console.print(f"No warehouse at {settings.warehouse} yet (no run has happened).")
    else:
        try:
            con = db.connect(settings.warehouse, read_only=True)
        except duckdb.Error as exc:
            console.print(f"[yellow]The warehouse is busy[/yellow] ({exc}); showing the inbox only.")
    try:
        if con is not None:
            _print_runs(con, settings, runs)
        waiting = ops.inbox_waiting(con, settings)
    finally:
        if con is not None:
            con.close()
    title = (f"{len(waiting)} files wait in the inbox {settings.inbox}" if holder is None and con is not None
             else f"{len(waiting)} files in the inbox {settings.inbox} (not checked against the warehouse)")
    table = Table(title=title)
    for col in ("file", "source", "bytes", "modified", "state"):
        table.add_column(col)
    for w in waiting:
        table.add_row(w["file"], w["source"], f"{w['bytes']:,}", w["modified"], w["state"])
    console.print(table)


def _print_runs(con, settings, n: int) -> None:
    import duckdb

    from skadestue import ops

    try:
        recent = ops.recent_runs(con, n)
    except duckdb.Error:
        console.print("The warehouse's schema predates run statistics; the next run migrates it.")
        return
    table = Table(title=f"Runs in {settings.warehouse}")
    for col in ("run", "status", "started", "seconds", "read", "loaded", "quarantined", "failed stage", "message"):
        table.add_column(col, overflow="fold")
    for r in recent:
        table.add_row(
            r["run_id"], r["status"], f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
            "" if r["seconds"] is None else f"{r['seconds']:.0f}",
            *("" if r[k] is None else f"{r[k]:,}" for k in ("rows_read", "rows_loaded", "rows_quarantined")),
            r["failed_stage"] or "", (r["message"] or "")[:300],
        )
    console.print(table)
    if recent:
        last = recent[0]["run_id"]
        stages = Table(title=f"Stages of run {last}")
        for col in ("stage", "status", "wall s", "CPU s", "peak MB", "rows"):
            stages.add_column(col)
        for s in ops.run_stages(con, last):
            stages.add_row(s["stage"], s["status"], f"{s['seconds']:.1f}", f"{s['cpu_seconds'] or 0:.1f}",
                           f"{s['peak_rss_mb'] or 0:.0f}", "" if s["rows"] is None else f"{s['rows']:,}")
        console.print(stages)


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
    maps = summary.get("stages", {}).get("maps") or {}
    if maps.get("files"):
        console.print(f"Maps and reports: {maps['dir']} ({maps['files']} files, lokalråd tier)")
    elif maps.get("error"):
        console.print(f"[yellow]Maps and reports failed[/yellow] (layers are published): {maps['error']}")


from skadestue.maps.cli import register as _register_maps  # noqa: E402

_register_maps(app)  # `skadestue map` and `skadestue report` (skadestue/maps/cli.py)


if __name__ == "__main__":
    app()
