"""``skadestue map`` and ``skadestue report``: registered on the main app by ``register(app)``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console()


def _settings(config, warehouse, publish):
    from skadestue.config import load_settings

    return load_settings(config, warehouse=warehouse, publish_dir=publish)


def _done(result, out: Path) -> None:
    for path in result.files:
        console.print(f"  {path}")
    console.print(f"{len(result.files)} files in {out} ({', '.join(f'{k} {v:.1f} s' for k, v in result.seconds.items())})")


def map_command(
    kommune: Optional[str] = typer.Option(None, help="Kommunekode, e.g. 0561 (Esbjerg)."),
    all_: bool = typer.Option(False, "--all", help="Every kommune of the police district."),
    period: Optional[str] = typer.Option(
        None, help="A published period: 2020-2024 (the analysis window) or a year (2024). Default: the newest window."
    ),
    out: Path = typer.Option(Path("maps"), help="Output folder."),
    pdf: bool = typer.Option(True, help="Also write the static map as PDF."),
    workers: Optional[int] = typer.Option(None, help="Processes for --all (default: settings.duckdb_threads)."),
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB, for the gazetteer (default data/warehouse.duckdb)."),
    publish: Optional[Path] = typer.Option(None, help="Published layers (default data/publish)."),
    config: Optional[Path] = typer.Option(None, help="skadestue.toml"),
) -> None:
    """Static map (A4 PNG 200 dpi + PDF) and interactive HTML map of a kommune's hotspots (lokalråd tier)."""
    from skadestue.maps import MapDataError, render

    if bool(kommune) == all_:
        console.print("[red]Give either --kommune KODE or --all.[/red]")
        raise typer.Exit(2)
    settings = _settings(config, warehouse, publish)
    try:
        result = render(settings, out, kommuner=None if all_ else [kommune], period=period, maps=True,
                        pdf=pdf, workers=workers)
    except MapDataError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    _done(result, out)


def report_command(
    kommune: Optional[str] = typer.Option(None, help="Kommunekode, e.g. 0561: the annual traffic analysis."),
    all_: bool = typer.Option(False, "--all", help="The annual report of every kommune."),
    year: Optional[int] = typer.Option(None, help="Report year (default: the last full year published)."),
    kredsraad: bool = typer.Option(False, "--kredsraad", help="The kredsråd's half-year status (all kommuner)."),
    half: Optional[str] = typer.Option(None, help="With --kredsraad: the half-year, e.g. 2024H2 (default: the latest)."),
    out: Path = typer.Option(Path("reports"), help="Output folder."),
    pdf: bool = typer.Option(True, help="Also print a PDF with headless Chromium (when installed)."),
    workers: Optional[int] = typer.Option(None, help="Processes for --all (default: settings.duckdb_threads)."),
    warehouse: Optional[Path] = typer.Option(None, help="Warehouse DuckDB, for the gazetteer (default data/warehouse.duckdb)."),
    publish: Optional[Path] = typer.Option(None, help="Published layers (default data/publish)."),
    config: Optional[Path] = typer.Option(None, help="skadestue.toml"),
) -> None:
    """Annual traffic analysis of a kommune (HTML + PDF, in Danish), or the kredsråd's half-year status."""
    from skadestue.maps import MapDataError, render, render_kredsraad_status
    from skadestue.maps.render import RenderResult, default_half
    from skadestue.maps.report import find_chromium

    if sum([bool(kommune), all_, kredsraad]) != 1:
        console.print("[red]Give one of --kommune KODE, --all or --kredsraad.[/red]")
        raise typer.Exit(2)
    settings = _settings(config, warehouse, publish)
    if pdf and find_chromium() is None:
        console.print("[yellow]No Chromium found: writing HTML only (apt-get install chromium for PDFs).[/yellow]")
    try:
        if kredsraad:
            files = render_kredsraad_status(settings, half or default_half(Path(settings.publish_dir)), out, pdf=pdf)
            result = RenderResult(files=files)
        else:
            result = render(settings, out, kommuner=None if all_ else [kommune], maps=False, year=year,
                            reports=True, pdf=pdf, workers=workers)
    except (MapDataError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    _done(result, out)


def register(app: typer.Typer) -> None:
    """Add ``map`` and ``report`` to the ``skadestue`` command line."""
    app.command("map")(map_command)
    app.command("report")(report_command)
