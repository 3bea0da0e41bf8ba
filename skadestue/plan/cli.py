"""``skadestue plan ...``: the traffic-safety plan sub-commands (added to skadestue.cli)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

plan_app = typer.Typer(add_completion=False, help="Traffic-safety plans: import measures, find the gaps.")
console = Console(width=max(Console().width, 120))


@plan_app.command("import")
def plan_import(
    file: Path = typer.Argument(..., exists=True, help="Plan measures (GeoPackage/GeoJSON): id, name, type, status, year."),
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB (default data/warehouse.duckdb)."),
    config: Optional[Path] = typer.Option(None, help="skadestue.toml"),
) -> None:
    """Load a plan into the warehouse (replacing the measures of its kommuner) and refresh
    plan_coverage; the published layers follow with the next run."""
    from skadestue import db
    from skadestue.config import load_settings
    from skadestue.plan import PlanImportError, build_plan_coverage, import_plan

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = load_settings(config, warehouse=warehouse)
    with db.warehouse(settings) as con:
        try:
            report = import_plan(con, file)
        except PlanImportError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        built = con.execute("SELECT count(*) FROM marts.hotspot_period").fetchone()[0] > 0
        coverage = build_plan_coverage(con, settings) if built else None
    console.print(
        f"{report.path.name}: {report.rows_read} measures read, {report.loaded} loaded, "
        f"{len(report.rejected)} rejected; kommuner {', '.join(report.kommuner) or '-'} "
        f"({report.replaced} earlier measures replaced)."
    )
    if report.rejected:
        table = Table(title="Not imported (fix the file and import it again)")
        for col in ("feature", "tiltag_id", "reason"):
            table.add_column(col)
        for r in report.rejected:
            table.add_row(str(r["feature"]), str(r["tiltag_id"] or ""), r["reason"])
        console.print(table)
    if coverage is None:
        console.print("No hotspot layers yet: plan_coverage is built with the next `skadestue run`.")
    else:
        console.print(
            f"plan_coverage: {coverage['hotspots']} hotspots, {coverage['gaps']} without a measure within "
            f"{settings.publish.plan_buffer_m:g} m; {coverage['measures_done']} measures done with a "
            "before/after table. Published with the next run."
        )
