"""``python -m spark_jobs <command>``; see :mod:`spark_jobs.cli`."""

from spark_jobs.cli import main

main()
