from collections.abc import Callable
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.export import export_csv_blocks
from orders.selectors import order_export_rows


class Command(BaseCommand):
    help = "Write the S-360 flat-file export (UTF-8, ';', header row) to a file or stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", help="File to write (default: standard output).")

    def handle(self, *args: object, out: str | None, **options: object) -> None:
        if out is None:
            self._write(lambda text: self.stdout.write(text, ending=""))
            return
        path = Path(out)
        if not path.parent.is_dir():
            raise CommandError(f"Folder {path.parent} does not exist.")
        with path.open("w", encoding="utf-8", newline="") as handle:
            count = self._write(handle.write)
        self.stderr.write(self.style.SUCCESS(f"Exported {count} orders to {path}."))

    def _write(self, write: Callable[[str], object]) -> int:
        rows = 0
        for block in export_csv_blocks(order_export_rows()):
            write(block)
            rows += block.count("\n")
        return rows - 1  # the header
