import json
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reconciliation.engine import DEFAULT_KEY, Options, compare
from reconciliation.reading import UnreadableFile, open_flat_file
from reconciliation.report import differences, write_report


class Command(BaseCommand):
    help = (
        "Compare an S-360 flat-file export with a CRM export: what is missing on either side "
        "and which fields differ. Prints the summary; --out writes every difference."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("s360_file")
        parser.add_argument("crm_file")
        parser.add_argument("--key", action="append", help="Key column(s); default ORDER_ID.")
        parser.add_argument(
            "--map",
            dest="column_map",
            default="{}",
            help="JSON object: CRM column name -> S-360 column name.",
        )
        parser.add_argument("--ignore", action="append", default=[], help="Column to skip.")
        parser.add_argument("--out", help="Write the differences report (CSV) here.")
        parser.add_argument("--memory-limit", default="1GB")

    def handle(self, *args: object, **options: object) -> None:
        try:
            column_map = json.loads(str(options["column_map"]))
        except json.JSONDecodeError as error:
            raise CommandError(f"--map is not JSON: {error}") from None
        if not isinstance(column_map, dict):
            raise CommandError("--map must be a JSON object of CRM name -> S-360 name.")
        settings = Options(
            key=tuple(
                name.strip() for keys in options["key"] or DEFAULT_KEY for name in keys.split(",")
            ),
            column_map=column_map,
            ignore=tuple(options["ignore"]),
            memory_limit=str(options["memory_limit"]),
        )
        with tempfile.TemporaryDirectory(prefix="reconcile-") as tmp:
            workdir = Path(tmp)
            start = time.perf_counter()
            try:
                s360 = open_flat_file(Path(str(options["s360_file"])), workdir, name="S-360")
                crm = open_flat_file(Path(str(options["crm_file"])), workdir, name="CRM")
                summary = compare(s360, crm, workdir=workdir, options=settings)
            except (UnreadableFile, OSError) as error:
                raise CommandError(str(error)) from None
            elapsed = time.perf_counter() - start
            self.stdout.write(json.dumps(summary.as_api(), indent=2))
            self.stderr.write(f"Compared in {elapsed:.1f} s.")
            if options["out"]:
                written = write_report(
                    differences(workdir / "job.duckdb"), Path(str(options["out"]))
                )
                self.stderr.write(f"{written} differences written to {options['out']}.")
