"""The `umbrella` command line: `serve` runs the server; import, export, collections and bench talk to one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from app.cli.demo import demo_command
from app.cli.remote import bench_command, collections_command, export_command, import_command
from app.cli.transport import with_deadlines
from app.core.config import Settings
from app.storage.lockfile import DataDirLock, DataDirLocked


class _Commands(click.Group):
    """Ordinary failures end in one line, not a traceback: a server that is not running or refuses a request,
    a data directory another server holds, Ctrl-C (with how an import resumes). `--debug` lets them through."""

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.params.get("debug"):
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            resume = (
                "; run the same command again to go on where it stopped" if ctx.invoked_subcommand == "import" else ""
            )
            interrupted = click.ClickException(f"interrupted{resume}")
            interrupted.exit_code = 130  # what a shell reports for Ctrl-C
            raise interrupted from None
        except Exception as err:
            if not type(err).__module__.startswith("umbrella_client"):
                raise
            refused = getattr(err, "code", "") == "connection_failed"
            hint = " (is `umbrella serve` running? --url or UMBRELLA_URL says where to look)" if refused else ""
            raise click.ClickException(f"{err}{hint}") from None


@click.group(cls=_Commands)
@click.version_option(package_name="umbrella", prog_name="umbrella")
@click.option("--debug", is_flag=True, help="Show the whole traceback of a failure, not one line.")
def main(debug: bool) -> None:
    """Umbrella vector search: `serve` runs the server; the other commands talk to a running one."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default UMBRELLA_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default UMBRELLA_PORT or 8000).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory (default ./indexes).")
@click.option("--api-key", default=None, help="Require this key in the api-key header (default UMBRELLA_API_KEY).")
def serve(host: str | None, port: int | None, data_dir: Path | None, api_key: str | None) -> None:
    """Run the server."""
    from app.main import create_app

    overrides = {k: v for k, v in {"host": host, "port": port, "data_dir": data_dir, "api_key": api_key}.items() if v}
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        raise click.ClickException("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())) from None
    if refusal := settings.unsafe_bind():
        raise click.ClickException(refusal)
    lock = DataDirLock(settings.data_dir)  # inside uvicorn's startup, a held directory ends in a traceback
    try:
        lock.acquire()
    except DataDirLocked as err:
        raise click.ClickException(f"{err}: stop that server, or serve another --data-dir") from None
    lock.release()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="info",
        proxy_headers=False,
        http=with_deadlines(settings.client_timeout_s),
    )


for command in (import_command, export_command, collections_command, bench_command, demo_command):
    main.add_command(command)
