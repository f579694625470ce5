"""Sessions, the funnel, activity and top lists from ``user-events``.

**Sessions.** A session is the events of one ``session_id`` with no gap longer than
:data:`SESSION_GAP_MS` between them (event time); an event after a longer gap starts a new
session of the same id (its number ``seq`` goes up). A session's state is
``[seq, last_ms, deepest_step]``; it lives in the ledger and is dropped
:data:`SESSION_GAP_MS` after its last event.

**Funnel.** The steps are :data:`STEPS`. A session counts at a step once it has reached
that step or a later one (a session that adds to cart without a page view has passed
the page-view step), so every step's count is at most the previous one's. The count is
taken in the minute the session first got that far. Step conversion is a step's sessions
over the previous step's; cart abandonment is ``1 - complete_checkout / add_to_cart``
sessions over the same window.

**Activity.** Active sessions and active users are distinct counts (exact sets of
``session#seq`` and of user ids, united over the partitions: a user's sessions may lie on
different partitions) over a window, ``sliding_5m`` for "the last five minutes".

**Top lists.** Product views by product and searches by search term (lower-cased, inner
spaces collapsed), the :data:`TOP_N` largest, ties by name.
"""

from __future__ import annotations

from typing import Any

from ecap.events import UserEvent, UserEventType, WindowKind
from ecap.kpis.ledger import Cell, Delta, Ledger
from ecap.kpis.windows import (
    MINUTE_MS,
    SLIDING_MS,
    Window,
    hopping,
    minute_of,
    tumbling,
)

KINDS = (WindowKind.TUMBLING_1M, WindowKind.HOPPING_1H, WindowKind.SLIDING_5M)
SESSION_GAP_MS = 30 * MINUTE_MS
STEPS = (
    UserEventType.PAGE_VIEW,
    UserEventType.PRODUCT_VIEW,
    UserEventType.ADD_TO_CART,
    UserEventType.BEGIN_CHECKOUT,
    UserEventType.COMPLETE_CHECKOUT,
)
STEP_OF = {step: number for number, step in enumerate(STEPS, start=1)}
TOP_N = 10
ALL = "all"

SEQ, LAST, DEEPEST = range(3)
"""Fields of a session state (``LAST`` is where ``ecap.kpis.ledger`` expects it)."""


def new_ledger(partitions: int) -> Ledger:
    return Ledger(partitions, KINDS, session_gap_ms=SESSION_GAP_MS)


def event_ms(event: UserEvent) -> int:
    return int(event.event_time.timestamp() * 1000)


def search_term(query: str) -> str:
    return " ".join(query.lower().split())


def add(delta: Delta, ledger: Ledger, event: UserEvent) -> None:
    """Count one valid user event into ``delta`` and update its session state there."""
    at = event_ms(event)
    if not ledger.admit(delta, at):
        return
    minute = minute_of(at)
    increments = delta.add
    kind = event.event_type
    increments[(minute, "events", ALL, ALL)] += 1
    increments[(minute, "events", "event_type", kind.value)] += 1

    session_id = event.session_id
    state = delta.sessions.get(session_id) or ledger.sessions.get(session_id)
    if state is None or at - state[LAST] > SESSION_GAP_MS:
        seq = 0 if state is None else state[SEQ] + 1
        state = [seq, at, 0]
        increments[(minute, "sessions_started", ALL, ALL)] += 1
    else:
        state = list(state)
        if at > state[LAST]:
            state[LAST] = at
    active = f"{session_id}#{state[SEQ]}"
    if not ledger.has_member(minute, ("sessions", ALL, ALL), active):
        delta.members[(minute, "sessions", ALL, ALL)].add(active)
    user = event.user_id
    if user is not None and not ledger.has_member(minute, ("users", ALL, ALL), user):
        delta.members[(minute, "users", ALL, ALL)].add(user)
    step = STEP_OF.get(kind)
    if step is not None and step > state[DEEPEST]:
        for reached in STEPS[state[DEEPEST] : step]:
            increments[(minute, "funnel_sessions", "step", reached.value)] += 1
        state[DEEPEST] = step
    if kind is UserEventType.PRODUCT_VIEW and event.product_id is not None:
        increments[(minute, "product_views", "product", event.product_id)] += 1
    elif kind is UserEventType.SEARCH and event.search_query is not None:
        increments[(minute, "searches", "search_term", search_term(event.search_query))] += 1
    delta.sessions[session_id] = state


# ---------------------------------------------------------------------- answers


def funnel_of(cells: dict[Cell, int]) -> dict[str, Any]:
    """Step counts, step conversion and cart abandonment from summed cells."""
    counts = [cells.get(("funnel_sessions", "step", step.value), 0) for step in STEPS]
    steps: list[dict[str, Any]] = [
        {
            "step": step.value,
            "sessions": n,
            "conversion": None if i == 0 or not counts[i - 1] else n / counts[i - 1],
        }
        for i, (step, n) in enumerate(zip(STEPS, counts, strict=True))
    ]
    carts, completed = counts[2], counts[4]
    return {
        "steps": steps,
        "overall_conversion": completed / counts[0] if counts[0] else None,
        "cart_abandonment": 1 - completed / carts if carts else None,
    }


def top(cells: dict[Cell, int], metric: str, dim: str, n: int = TOP_N) -> list[list[Any]]:
    """The ``n`` largest values of ``metric`` by ``dim`` as ``[name, count]``."""
    counts = [(value, count) for (m, d, value), count in cells.items() if m == metric and d == dim]
    counts.sort(key=lambda item: (-item[1], item[0]))
    return [[value, count] for value, count in counts[:n]]


def _activity(unions: dict[Cell, set[str]]) -> dict[str, int]:
    return {
        "active_sessions": len(unions.get(("sessions", ALL, ALL), ())),
        "active_users": len(unions.get(("users", ALL, ALL), ())),
    }


def results(ledger: Ledger, window: Window) -> list[tuple[str, str, str, float]]:
    """(metric, dimension, value, number) for every KPI of a window, for publishing."""
    unions = ledger.unions(window)
    out = [(metric, ALL, ALL, float(n)) for metric, n in _activity(unions).items()]
    if window.kind is WindowKind.SLIDING_5M:
        return out
    cells = ledger.cells(window)
    for (metric, dim, value), n in sorted(cells.items()):
        if metric in ("events", "sessions_started", "funnel_sessions"):
            out.append((metric, dim, value, float(n)))
    funnel = funnel_of(cells)
    for step in funnel["steps"][1:]:
        if step["conversion"] is not None:
            out.append(("funnel_conversion", "step", step["step"], step["conversion"]))
    if funnel["cart_abandonment"] is not None:
        out.append(("cart_abandonment", ALL, ALL, funnel["cart_abandonment"]))
    for metric, dim in (("product_views", "product"), ("searches", "search_term")):
        out.extend((metric, dim, name, float(count)) for name, count in top(cells, metric, dim))
    return out


def _window(window: Window, ledger: Ledger) -> dict[str, Any]:
    return {
        "window": window.kind.value,
        "start": window.start_ms,
        "end": window.end_ms,
        "final": ledger.clock.is_closed(window),
        "late_events": ledger.late.get(window, 0),
    }


def latest(ledger: Ledger, kind: WindowKind) -> Window | None:
    """The window of ``kind`` for the latest minute: that minute, the hopping hour holding
    it that started first, or the five minutes ending with it."""
    minute = ledger.current_minute()
    if minute is None:
        return None
    if kind is WindowKind.TUMBLING_1M:
        return tumbling(minute)
    if kind is WindowKind.HOPPING_1H:
        return hopping(minute)[0]
    return Window(WindowKind.SLIDING_5M, (minute + 1) * MINUTE_MS - SLIDING_MS)


def funnel(ledger: Ledger, window: str) -> dict[str, Any]:
    """The ``/funnel`` answer for the latest window of a kind, or ``total`` (since start)."""
    if window == "total":
        return {"window": "total", **funnel_of(ledger.totals)}
    kind = WindowKind(window)
    if kind is WindowKind.SLIDING_5M:
        raise ValueError("the funnel has tumbling_1m, hopping_1h and total windows")
    chosen = latest(ledger, kind)
    if chosen is None:
        return {"window": kind.value, **funnel_of({})}
    return {**_window(chosen, ledger), **funnel_of(ledger.cells(chosen))}


def sessions_active(ledger: Ledger) -> dict[str, Any]:
    """The ``/sessions/active`` answer: the last five minutes of event time."""
    chosen = latest(ledger, WindowKind.SLIDING_5M)
    if chosen is None:
        return {"window": WindowKind.SLIDING_5M.value, "active_sessions": 0, "active_users": 0}
    cells = ledger.cells(chosen)
    return {
        **_window(chosen, ledger),
        **_activity(ledger.unions(chosen)),
        "sessions_started": cells.get(("sessions_started", ALL, ALL), 0),
        "events": cells.get(("events", ALL, ALL), 0),
        "open_sessions": len(ledger.sessions),
        "session_gap_s": SESSION_GAP_MS // 1000,
    }


def top_lists(ledger: Ledger, window: str) -> dict[str, Any]:
    """The ``/top`` answer: most viewed products and top search terms."""
    kind = WindowKind(window)
    chosen = latest(ledger, kind)
    if chosen is None:
        return {"window": kind.value, "products": [], "search_terms": []}
    cells = ledger.cells(chosen)
    return {
        **_window(chosen, ledger),
        "products": top(cells, "product_views", "product"),
        "search_terms": top(cells, "searches", "search_term"),
    }
