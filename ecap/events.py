"""Event contracts: every record that crosses a topic is defined here, and only here.

Each event carries ``schema_version``; a breaking change adds a new version instead of
changing an old one. Times are timezone-aware UTC. Amounts are decimal currency units
rounded to the cent. ``ecap schemas export DIR`` writes the JSON Schema of every model for
producers written in other languages.

``decode`` and ``encode`` are the only way agents turn bytes into models and back:
``decode`` raises :class:`EventError`, whose message names the offending field, so a
record that fails can go to its dead-letter topic with a useful reason.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

MAX_AMOUNT = 1_000_000.0
"""Largest single amount accepted; anything above is an absurd value, not a sale."""

MAX_RECORD_BYTES = 1_000_000
"""Payloads above this size are rejected before parsing (Kafka's default message limit)."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (UTC), e.g. 2026-11-27T10:00:00Z")
    return value.astimezone(UTC)


def _cents(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("amount must be a finite number")
    rounded = round(value, 2)
    if abs(rounded - value) > 1e-6:
        raise ValueError("amount must have at most two decimals (cents)")
    return rounded


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Money = Annotated[float, Field(ge=0, le=MAX_AMOUNT), AfterValidator(_cents)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Event(BaseModel):
    """Base of every contract: strict about unknown fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    schema_version: Literal[1] = 1


class Location(BaseModel):
    """Where an event happened, as resolved from the IP or the device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    city: str = Field(min_length=1, max_length=100)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")
    region: str = Field(min_length=1, max_length=40, description="Sales region, e.g. 'EMEA'.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


# --------------------------------------------------------------------------- transactions


class TransactionType(StrEnum):
    PURCHASE = "purchase"
    REFUND = "refund"


class PaymentMethod(StrEnum):
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    PAYPAL = "paypal"
    APPLE_PAY = "apple_pay"
    GOOGLE_PAY = "google_pay"
    BANK_TRANSFER = "bank_transfer"
    GIFT_CARD = "gift_card"


class Channel(StrEnum):
    WEB = "web"
    APP = "app"


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: Id
    category: str = Field(min_length=1, max_length=60)
    quantity: int = Field(ge=1, le=1000)
    unit_price: Money


class Transaction(Event):
    """A completed payment (purchase) or a refund of an earlier one. Key: ``user_id``."""

    transaction_id: Id
    event_time: UtcDatetime
    user_id: Id
    session_id: Id | None = None
    merchant_id: Id
    type: TransactionType = TransactionType.PURCHASE
    original_transaction_id: Id | None = Field(
        None, description="For refunds: the purchase being refunded."
    )
    amount: Money = Field(description="Total charged (or refunded), in `currency`.")
    currency: CurrencyCode
    items: list[LineItem] = Field(min_length=1, max_length=100)
    payment_method: PaymentMethod
    payment_instrument_id: Id = Field(description="Opaque token of the card/wallet used.")
    device_id: Id
    ip_address: str = Field(min_length=3, max_length=45)
    channel: Channel
    location: Location

    @model_validator(mode="after")
    def _refund_points_to_purchase(self) -> Transaction:
        if self.type is TransactionType.REFUND and self.original_transaction_id is None:
            raise ValueError("original_transaction_id is required when type is 'refund'")
        return self


# --------------------------------------------------------------------------- user events


class UserEventType(StrEnum):
    SESSION_START = "session_start"
    PAGE_VIEW = "page_view"
    SEARCH = "search"
    PRODUCT_VIEW = "product_view"
    ADD_TO_WISHLIST = "add_to_wishlist"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    BEGIN_CHECKOUT = "begin_checkout"
    ADD_PAYMENT_INFO = "add_payment_info"
    COMPLETE_CHECKOUT = "complete_checkout"
    PRODUCT_REVIEW = "product_review"
    LOGIN = "login"
    LOGOUT = "logout"
    SIGNUP = "signup"


_NEEDS_PRODUCT = {
    UserEventType.PRODUCT_VIEW,
    UserEventType.ADD_TO_WISHLIST,
    UserEventType.ADD_TO_CART,
    UserEventType.REMOVE_FROM_CART,
    UserEventType.PRODUCT_REVIEW,
}
_NEEDS_USER = {
    UserEventType.BEGIN_CHECKOUT,
    UserEventType.ADD_PAYMENT_INFO,
    UserEventType.COMPLETE_CHECKOUT,
    UserEventType.LOGIN,
    UserEventType.LOGOUT,
    UserEventType.SIGNUP,
    UserEventType.PRODUCT_REVIEW,
}


class UserEvent(Event):
    """One step of a browsing session. Key: ``session_id``.

    Which optional fields are required depends on ``event_type``: product events name the
    product, searches carry the query, checkout and account events name the user.
    """

    event_id: Id
    event_type: UserEventType
    event_time: UtcDatetime
    session_id: Id
    user_id: Id | None = Field(None, description="Absent while the visitor is anonymous.")
    device_id: Id
    channel: Channel
    location: Location
    page: str = Field(min_length=1, max_length=200, description="Path of the page, e.g. '/cart'.")
    referrer: str | None = Field(None, max_length=200)
    product_id: Id | None = None
    category: str | None = Field(None, max_length=60)
    price: Money | None = None
    quantity: int | None = Field(None, ge=1, le=1000)
    search_query: str | None = Field(None, min_length=1, max_length=200)
    rating: int | None = Field(None, ge=1, le=5)
    cart_value: Money | None = Field(None, description="Cart total at checkout events.")
    transaction_id: Id | None = Field(None, description="Set on complete_checkout.")

    @model_validator(mode="after")
    def _fields_for_type(self) -> UserEvent:
        kind = self.event_type
        if kind in _NEEDS_PRODUCT and self.product_id is None:
            raise ValueError(f"product_id is required for {kind.value} events")
        if kind in _NEEDS_USER and self.user_id is None:
            raise ValueError(f"user_id is required for {kind.value} events")
        if kind is UserEventType.SEARCH and self.search_query is None:
            raise ValueError("search_query is required for search events")
        if kind is UserEventType.PRODUCT_REVIEW and self.rating is None:
            raise ValueError("rating is required for product_review events")
        if kind is UserEventType.COMPLETE_CHECKOUT and self.transaction_id is None:
            raise ValueError("transaction_id is required for complete_checkout events")
        return self


# --------------------------------------------------------------------------- catalogue


class ProductChange(StrEnum):
    CREATED = "created"
    PRICE_CHANGED = "price_changed"
    STOCK_CHANGED = "stock_changed"
    DISCONTINUED = "discontinued"


class ProductUpdate(Event):
    """The full current state of a product after a change. Key: ``product_id`` (compacted)."""

    product_id: Id
    event_time: UtcDatetime
    change: ProductChange
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=60)
    price: Money
    cost: Money = Field(description="Unit cost to the shop, for margin.")
    currency: CurrencyCode
    stock: int = Field(ge=0)
    active: bool = True


class CustomerSegment(StrEnum):
    NEW = "new"
    RETURNING = "returning"
    LOYAL = "loyal"
    POWER_USER = "power_user"


class Customer(Event):
    """A customer profile. Key: ``customer_id`` (compacted: the latest profile wins)."""

    customer_id: Id
    event_time: UtcDatetime
    signup_time: UtcDatetime
    segment: CustomerSegment
    home: Location
    currency: CurrencyCode
    email_domain: str = Field(min_length=3, max_length=100, description="Domain only, no PII.")
    marketing_opt_in: bool


# --------------------------------------------------------------------------- fraud


class AlertPriority(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class AlertReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=60, description="Rule id or model name.")
    description: str = Field(max_length=300)
    contribution: float = Field(ge=0, le=1, description="Share of the score from this reason.")


class FraudAlert(Event):
    """One alert per suspicious transaction. Key: ``user_id``."""

    alert_id: Id
    transaction_id: Id
    user_id: Id
    merchant_id: Id
    amount: Money
    currency: CurrencyCode
    score: float = Field(ge=0, le=1)
    priority: AlertPriority
    reasons: list[AlertReason] = Field(min_length=1)
    ruleset_version: int = Field(ge=0)
    model_version: str = Field(min_length=1, max_length=60)
    event_time: UtcDatetime
    detection_time: UtcDatetime


class FraudScenario(StrEnum):
    CARD_TESTING = "card_testing"
    ACCOUNT_TAKEOVER = "account_takeover"
    IMPOSSIBLE_TRAVEL = "impossible_travel"
    AMOUNT_SPIKE = "amount_spike"
    ODD_HOURS = "odd_hours"
    MANY_INSTRUMENTS = "many_instruments"


class FraudLabel(Event):
    """Generator ground truth for one fraudulent transaction. Never read by detectors."""

    transaction_id: Id
    user_id: Id
    scenario: FraudScenario
    attack_id: Id = Field(description="Groups the transactions of one attack.")
    event_time: UtcDatetime


FEATURES_HEADER = "ecap-features"
"""Header of a ``fraud-alerts`` record: the features the detector scored, as JSON."""


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class FraudFeedback(Event):
    """An investigator's verdict on one alerted transaction. Key: ``transaction_id``.

    ``ecap cases verdict`` publishes one per verdict; every transactions worker reads them
    all and teaches its model, its rule precision counts and the merchant's statistics.
    ``features`` are those the detector scored when it raised the alert (carried from the
    alert's :data:`FEATURES_HEADER` into the case), so the model learns the verdict on what
    it actually saw.
    """

    case_id: int = Field(ge=1)
    alert_id: Id
    transaction_id: Id
    user_id: Id
    merchant_id: Id
    verdict: Verdict
    reasons: list[str] = Field(description="Codes of the alert's reasons (rule ids and models).")
    features: dict[str, float] | None = Field(
        None, description="The features the detector scored, when the alert carried them."
    )
    note: str | None = Field(None, max_length=2000)
    decided_by: str = Field(min_length=1, max_length=120)
    decided_at: UtcDatetime

    @property
    def is_fraud(self) -> bool:
        return self.verdict is Verdict.CONFIRMED


# --------------------------------------------------------------------------- outputs


class WindowKind(StrEnum):
    TUMBLING_1M = "tumbling_1m"
    HOPPING_1H = "hopping_1h"
    SLIDING_5M = "sliding_5m"


class AnalyticsResult(Event):
    """A KPI value for one window and dimension. Key: ``metric``."""

    metric: str = Field(min_length=1, max_length=60)
    window: WindowKind
    window_start: UtcDatetime
    window_end: UtcDatetime
    dimension: str = Field("all", min_length=1, max_length=40, description="e.g. 'category'.")
    dimension_value: str = Field("all", min_length=1, max_length=100)
    value: float
    final: bool = Field(description="False while the window is open, True once it closed.")
    late_events: int = Field(0, ge=0, description="Events that arrived after the grace period.")
    computed_at: UtcDatetime

    @model_validator(mode="after")
    def _window_ordered(self) -> AnalyticsResult:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


class FailureStage(StrEnum):
    DECODE = "decode"
    VALIDATE = "validate"
    PROCESS = "process"


class DeadLetter(Event):
    """A record that could not be processed, kept with its original bytes (base64)."""

    source_topic: str = Field(min_length=1, max_length=249)
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key_b64: str | None = None
    payload_b64: str
    error: str = Field(max_length=2000)
    stage: FailureStage
    worker: str = Field(min_length=1, max_length=120)
    failed_at: UtcDatetime

    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)


# --------------------------------------------------------------------------- codec

CONTRACTS: dict[str, type[Event]] = {
    "transaction": Transaction,
    "user_event": UserEvent,
    "product_update": ProductUpdate,
    "customer": Customer,
    "fraud_alert": FraudAlert,
    "fraud_label": FraudLabel,
    "fraud_feedback": FraudFeedback,
    "analytics_result": AnalyticsResult,
    "dead_letter": DeadLetter,
}
"""Every contract by name; the JSON Schema export writes one file per entry."""

E = TypeVar("E", bound=Event)


class EventError(ValueError):
    """A payload that is not a valid event; ``stage`` says whether it failed to parse."""

    def __init__(self, message: str, stage: FailureStage) -> None:
        super().__init__(message)
        self.stage = stage


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "(record)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def decode(model: type[E], payload: bytes | str) -> E:
    """Parse and validate one record, or raise :class:`EventError` naming the field."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_RECORD_BYTES:
        raise EventError(
            f"record is {len(raw)} bytes, over the {MAX_RECORD_BYTES}-byte limit",
            FailureStage.DECODE,
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not valid JSON: {exc}", FailureStage.DECODE) from exc
    if not isinstance(data, dict):
        raise EventError(f"expected a JSON object, got {type(data).__name__}", FailureStage.DECODE)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EventError(
            f"invalid {model.__name__}: {_describe(exc)}", FailureStage.VALIDATE
        ) from exc


def encode(event: Event) -> bytes:
    """Serialise an event to compact JSON bytes with keys in declaration order."""
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def optional_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` that default to None, in declaration order.

    They are the fields a record may leave out. Code that writes a contract's fields
    without building the model (the generator's wire format, the bronze rows) takes them
    from here, so a field added to the contract reaches it.
    """
    return tuple(name for name, field in model.model_fields.items() if field.default is None)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema (draft 2020-12) of every contract, by contract name."""
    schemas = {}
    for name, model in CONTRACTS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://ecap.dev/schemas/{name}/v1.json"
        schemas[name] = schema
    return schemas


def now_utc() -> datetime:
    return datetime.now(UTC)
