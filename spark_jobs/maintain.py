"""Lake maintenance: compact small files, then delete the files no recent version needs.

Ingest appends a few files per partition per run and gold tables are rewritten whole, so
small files and unreferenced old files pile up. For every Delta table under the bronze,
silver and gold folders, ``maintain`` runs ``optimize`` (a new version whose files are
bigger; the rows do not change) and then ``vacuum`` with a retention in hours: time
travel keeps working for versions younger than the retention.
"""

from __future__ import annotations

import pyarrow.fs as pafs

from spark_jobs import delta_io
from spark_jobs.lake import LAYERS, Lake
from spark_jobs.options import RETENTION_HOURS
from spark_jobs.report import JobReport, Progress, quiet


def tables(the_lake: Lake) -> list[str]:
    """The ``layer/name`` of every Delta table in the lake, in layer order."""
    fs, root = pafs.FileSystem.from_uri(the_lake.root)
    found = []
    for layer in LAYERS:
        selector = pafs.FileSelector(f"{root}/{layer}", allow_not_found=True)
        for info in sorted(fs.get_file_info(selector), key=lambda i: i.base_name):
            name = f"{layer}/{info.base_name}"
            if info.type == pafs.FileType.Directory and delta_io.table_exists(
                f"{the_lake.root}/{name}"
            ):
                found.append(name)
    return found


def run(
    the_lake: Lake,
    *,
    retention_hours: int = RETENTION_HOURS,
    progress: Progress = quiet,
) -> JobReport:
    """Optimize and vacuum every table; the report counts files compacted and deleted."""
    report = JobReport("maintain")
    compacted = removed = 0
    found = tables(the_lake)
    for name in found:
        path = f"{the_lake.root}/{name}"
        progress(f"compacting {name}")
        metrics = delta_io.optimize(path)
        compacted += int(metrics.get("numFilesRemoved", 0))
        progress(f"vacuuming {name}")
        removed += len(delta_io.vacuum(path, retention_hours=retention_hours))
    report.facts["tables maintained"] = f"{len(found)} under {the_lake.root}"
    report.facts["files compacted"] = f"{compacted:,}"
    report.facts[f"files deleted (older than {retention_hours} h)"] = f"{removed:,}"
    return report.done()
