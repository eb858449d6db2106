"""Reconciliations: create one from uploads, run it (in a Celery task), re-sync what differs."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders.export import export_csv_blocks
from orders.models import Order
from orders.selectors import order_export_rows
from sync.models import SyncReason
from sync.outbox import outbox_flag
from webhooks.models import Endpoint

from .engine import DEFAULT_KEY, Options, compare
from .models import Difference, Reconciliation
from .reading import UnreadableFile, open_flat_file
from .report import differences

log = logging.getLogger(__name__)
COPY_BATCH = 5000
STALE_AFTER = dt.timedelta(hours=2)  # ten million rows a side take under a minute


class UploadTooLarge(ValueError):
    """An uploaded file is over RECONCILIATION_MAX_UPLOAD_BYTES."""


def reconciliation_create(
    *,
    crm_file: UploadedFile,
    s360_file: UploadedFile | None = None,
    key_columns: Sequence[str] = DEFAULT_KEY,
    column_map: dict[str, str] | None = None,
    ignore_columns: Sequence[str] = (),
    case_insensitive_columns: Sequence[str] = (),
    numeric_tolerance: float = 0.0,
    date_formats: dict[str, str] | None = None,
    requested_by: object | None = None,
) -> Reconciliation:
    """Store the uploads and queue the comparison (after commit)."""
    limit = settings.RECONCILIATION_MAX_UPLOAD_BYTES
    for upload in (crm_file, s360_file):
        if upload is not None and upload.size > limit:
            raise UploadTooLarge(
                f"{upload.name} is {upload.size / 2**20:,.0f} MB; the limit is "
                f"{limit / 2**20:,.0f} MB (RECONCILIATION_MAX_UPLOAD_MB)."
            )
    if not key_columns:
        raise ValidationError({"keyColumn": ["At least one key column."]})
    record = Reconciliation.objects.create(
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
        crm_file=crm_file,
        s360_file=s360_file or "",
        key_columns=list(key_columns),
        column_map=dict(column_map or {}),
        ignore_columns=list(ignore_columns),
        case_insensitive_columns=list(case_insensitive_columns),
        numeric_tolerance=numeric_tolerance,
        date_formats=dict(date_formats or {}),
    )
    from .tasks import run_reconciliation

    transaction.on_commit(lambda: run_reconciliation.delay(record.pk))
    return record


def _workdir(record: Reconciliation) -> Path:
    path = Path(settings.MEDIA_ROOT) / "reconciliations" / "work" / str(record.pk)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def reconciliation_run(*, reconciliation_id: int) -> Reconciliation:
    """Compare the two files and store every difference. Never raises for bad files: the
    record ends FAILED with an error that says what to fix."""
    now = timezone.now()
    # PENDING, or RUNNING for so long that its worker must have died (Celery redelivers the
    # task of a killed worker: it takes the job over instead of leaving it RUNNING forever).
    runnable = Q(status=Reconciliation.Status.PENDING) | Q(
        status=Reconciliation.Status.RUNNING, started_at__lt=now - STALE_AFTER
    )
    claimed = Reconciliation.objects.filter(runnable, pk=reconciliation_id).update(
        status=Reconciliation.Status.RUNNING, started_at=now
    )
    record = Reconciliation.objects.get(pk=reconciliation_id)
    if not claimed:  # already run, or running elsewhere
        return record
    workdir = _workdir(record)

    def step(label: str) -> None:
        Reconciliation.objects.filter(pk=record.pk).update(progress=label)

    try:
        if not record.s360_file:
            step("Generating the S-360 export from the database")
        s360_path = _s360_file(record, workdir)
        summary = compare(
            open_flat_file(s360_path, workdir, name="S-360"),
            open_flat_file(Path(record.crm_file.path), workdir, name="CRM"),
            workdir=workdir,
            options=Options(
                key=tuple(record.key_columns),
                column_map=record.column_map,
                ignore=tuple(record.ignore_columns),
                case_insensitive=tuple(record.case_insensitive_columns),
                numeric_tolerance=record.numeric_tolerance,
                date_formats=record.date_formats,
                memory_limit=settings.RECONCILIATION_MEMORY_LIMIT,
            ),
            on_step=step,
        )
        step("Storing the differences")
        _store_differences(record, workdir / "job.duckdb")
    except UnreadableFile as error:
        return _finish(record, Reconciliation.Status.FAILED, error=str(error))
    except Exception:
        log.exception("reconciliation %s failed", record.pk)
        return _finish(
            record,
            Reconciliation.Status.FAILED,
            error="The comparison stopped on an internal error (logged). The files were kept.",
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _finish(record, Reconciliation.Status.DONE, summary=summary.as_api())


def _s360_file(record: Reconciliation, workdir: Path) -> Path:
    if record.s360_file:
        return Path(record.s360_file.path)
    path = workdir / "s360-generated.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        for block in export_csv_blocks(order_export_rows()):
            handle.write(block)
    return path


def _store_differences(record: Reconciliation, job_db: Path) -> None:
    Difference.objects.filter(reconciliation=record).delete()  # a taken-over run starts clean
    batch: list[Difference] = []
    for kind, key, column, s360_value, crm_value in differences(job_db):
        batch.append(
            Difference(
                reconciliation=record,
                kind=kind,
                key=key[:200],
                column=(column or "")[:200],
                s360_value=s360_value,
                crm_value=crm_value,
            )
        )
        if len(batch) == COPY_BATCH:
            Difference.objects.bulk_create(batch)
            batch = []
    Difference.objects.bulk_create(batch)


def _finish(record: Reconciliation, status: str, **fields: object) -> Reconciliation:
    fields = {"status": status, "finished_at": timezone.now(), "progress": "", **fields}
    for name, value in fields.items():
        setattr(record, name, value)
    record.save()
    return record


RESYNC_KINDS = (Difference.Kind.ONLY_IN_S360, Difference.Kind.MISMATCH, Difference.Kind.UNPARSEABLE)


def reconciliation_resync(*, reconciliation: Reconciliation, endpoint: Endpoint) -> int:
    """Flag the differing orders that exist in S-360 for the endpoint (reason RESYNC);
    return how many were flagged. Keys only in the CRM are not ours to send."""
    if reconciliation.status != Reconciliation.Status.DONE:
        raise ValidationError({"detail": ["The comparison has not finished."]})
    if reconciliation.key_columns[:1] != ["ORDER_ID"]:
        raise ValidationError(
            {"detail": ["Re-sync needs ORDER_ID as the (first) key column to find the orders."]}
        )
    if not endpoint.is_active:
        raise ValidationError({"endpoint": [f"{endpoint} is paused or disabled."]})
    keys = (
        Difference.objects.filter(reconciliation=reconciliation, kind__in=RESYNC_KINDS)
        .values_list("key", flat=True)
        .distinct()
    )
    order_ids = sorted(
        {int(first) for k in keys if (first := k.split("|")[0]).isascii() and first.isdigit()}
    )
    flagged = 0
    with transaction.atomic():
        for start in range(0, len(order_ids), 5000):
            flagged += outbox_flag(
                endpoint=endpoint,
                orders=Order.objects.filter(order_id__in=order_ids[start : start + 5000]),
                reason=SyncReason.RESYNC,
            )
        Reconciliation.objects.filter(pk=reconciliation.pk).update(resynced=flagged)
    reconciliation.resynced = flagged
    return flagged
