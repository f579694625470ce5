"""``--orders /etc/passwd`` answered "lacks the column(s) customer_id, order_time, amount;
it has root:x:0:0:root:/root:/bin/bash": the file's first line, read as its header. The
message now names ECAP's columns and only counts the file's others."""

from __future__ import annotations

import csv
import io

import pytest

from spark_jobs.orders_file import REQUIRED, OrdersFileError, column_names

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon,,,:/usr/sbin:/usr/sbin/nologin\n"
    "ecap:x:1000:1000:Ecap Operator,,,:/home/ecap:/bin/bash\n"
)


def _refusal(text: str) -> str:
    """The message for a CSV file with ``text``, whose first line Spark reads as the header."""
    header = next(csv.reader(io.StringIO(text)))
    with pytest.raises(OrdersFileError) as refused:
        column_names(header, "/etc/passwd")
    return str(refused.value)


def test_a_file_that_is_not_an_order_file_is_refused_naming_the_missing_columns() -> None:
    message = _refusal(PASSWD)
    assert "lacks the column(s) customer_id, order_time, amount" in message
    assert all(column in message for column in REQUIRED)


def test_the_refusal_echoes_nothing_of_the_file() -> None:
    message = _refusal(PASSWD)
    assert [shown for shown in ("root", "x:0:0", "/bin/bash") if shown in message] == []


def test_the_refusal_counts_the_columns_it_does_not_show() -> None:
    message = _refusal("Customer_ID,order_time,password,hunter2\nc1,2024-01-01,x,y\n")
    assert "lacks the column(s) amount" in message
    assert "it has customer_id, order_time and 2 other column(s), not shown" in message
    assert [name for name in ("password", "hunter2") if name in message] == []
