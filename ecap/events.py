"""Event contracts: every record that crosses a topic is defined here, and only here.

Each event carries ``schema_version``; a breaking change adds a new version instead of
changing an old one (:data:`SCHEMA_VERSION` is written, :data:`READ_VERSIONS` are read).
Times are timezone-aware UTC. ``ecap schemas export DIR`` writes the JSON Schema of every
model for producers written in other languages.

**Types are strict.** A number is a JSON number and a flag a JSON boolean: ``"50.00"``,
``true`` as an amount or ``"yes"`` as a flag are errors, not coerced. A record naming one
key twice is refused (:func:`decode`): JSON parsers disagree on which copy wins.

**Money** (:data:`Money`) is the number as the producer wrote it: an ``int`` when JSON
gave an integer (``1500000`` JPY), else a ``float``. Floats are exact here: an amount has
at most :data:`~ecap.currency.MAX_DIGITS` digits counted to its currency's minor unit, and
:func:`ecap.currency.scaled` proves that such a double names exactly one decimal, so no
amount is rounded on its way (the KPIs, the cases table and the lake read that decimal).
Version 2 checks decimals per currency (ISO 4217 minor units from CLDR: JPY 0, EUR 2,
KWD 3) and plausibility in euros (:data:`~ecap.currency.MAX_AMOUNT_EUR`); version 1
records, written when every amount had two decimals, may keep two.

``decode`` and ``encode`` are the only way agents turn bytes into models and back:
``decode`` raises :class:`EventError`, whose message names the offending field, so a
record that fails can go to its dead-letter topic with a useful reason.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

import jiter
import orjson
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from ecap.currency import (
    MAX_AMOUNT_EUR,
    MAX_DIGITS,
    MAX_MINOR_UNITS,
    MINOR_UNITS,
    REPORTING_CURRENCY,
    SUPPORTED,
    UNITS_CEILING,
    max_amount,
    plausible,
    scaled,
)

SCHEMA_VERSION: Final = 2
"""The contract version ECAP writes. Version 2: strict money and flag types, decimals per
currency, plausibility in euros, supported currencies only."""
READ_VERSIONS = (1, 2)
"""Versions a record may carry; version 1 amounts may have two decimals in any currency."""

MAX_RECORD_BYTES = 1_000_000
"""Payloads above this size are rejected before parsing (Kafka's default message limit)."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (UTC), e.g. 2026-11-27T10:00:00Z")
    return value.astimezone(UTC)


def _money(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"an amount must be a JSON number such as 12.5, not {type(value).__name__}"
        )
    if not math.isfinite(value) or value < 0:
        raise ValueError("an amount must be a finite number, 0 or more")
    if value >= UNITS_CEILING:
        raise ValueError(f"an amount must have at most {MAX_DIGITS} digits")
    return value


def _currency(code: str) -> str:
    if code not in SUPPORTED:
        raise ValueError(
            f"{code!r} is not a supported currency; use an active ISO 4217 code such as "
            "EUR, USD or JPY (metals, units of account and test codes such as XAU, XDR or XTS "
            "are refused)"
        )
    return code


def _version(value: object) -> object:
    if type(value) is not int:
        raise ValueError(f"schema_version must be an integer, one of {READ_VERSIONS}")
    return value


def _decimals_of(currency: str, schema_version: int) -> int:
    """Decimals an amount in ``currency`` may have in a record of ``schema_version``."""
    digits = MINOR_UNITS[currency]
    return digits if schema_version >= 2 else max(2, digits)


def _check_amount(field: str, value: float, currency: str, schema_version: int) -> None:
    """Raise ValueError unless ``value`` fits ``currency``: its decimals, its digits and,
    when the currency has a rate, the plausibility limit in euros."""
    decimals = _decimals_of(currency, schema_version)
    units = scaled(value, decimals)
    if units is None:
        raise ValueError(
            f"{field} {value} has more decimals than {currency} has ({decimals}); write "
            f"amounts in the currency's minor units (JPY 0, EUR 2, KWD 3 decimals)"
        )
    if units >= UNITS_CEILING:
        raise ValueError(
            f"{field} {value} {currency} has more than {MAX_DIGITS} digits with its decimals"
        )
    if not plausible(units, decimals, currency):
        most = max_amount(currency)
        raise ValueError(
            f"{field} {value} {currency} is above the plausibility limit of "
            f"{MAX_AMOUNT_EUR:,} {REPORTING_CURRENCY} (about {float(most or 0):,.0f} "
            f"{currency}); check the amount's decimal point and currency"
        )


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Money = Annotated[
    int | float,
    PlainValidator(_money),
    WithJsonSchema({"type": "number", "minimum": 0, "exclusiveMaximum": UNITS_CEILING}),
]
"""An amount: a JSON number (an integer stays an ``int``), never a string or a boolean.
Its decimals and plausibility depend on the currency: the contract checks them."""
Number = Annotated[StrictFloat, AllowInfNan(False)]
"""A JSON number, read as a float (an integer too); not a string, a boolean or infinity."""
Count = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
"""A JSON integer 0 or more that fits 64 bits; not a string, a float or a boolean."""
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
CurrencyCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "enum": sorted(SUPPORTED)}),
]
SchemaVersion = Annotated[Literal[1, 2], BeforeValidator(_version)]


class Event(BaseModel):
    """Base of every contract: strict about unknown fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    schema_version: SchemaVersion = SCHEMA_VERSION


class Location(BaseModel):
    """Where an event happened, as resolved from the IP or the device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    city: str = Field(min_length=1, max_length=100)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")
    region: str = Field(min_length=1, max_length=40, description="Sales region, e.g. 'EMEA'.")
    lat: Number = Field(ge=-90, le=90)
    lon: Number = Field(ge=-180, le=180)


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
    quantity: StrictInt = Field(ge=1, le=1000)
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

    @model_validator(mode="after")
    def _amounts_fit_the_currency(self) -> Transaction:
        version = self.schema_version
        _check_amount("amount", self.amount, self.currency, version)
        for i, line in enumerate(self.items):
            _check_amount(f"items.{i}.unit_price", line.unit_price, self.currency, version)
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
    price: Money | None = Field(None, description="In the visitor's currency.")
    quantity: StrictInt | None = Field(None, ge=1, le=1000)
    search_query: str | None = Field(None, min_length=1, max_length=200)
    rating: StrictInt | None = Field(None, ge=1, le=5)
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
        for name, value in (("price", self.price), ("cart_value", self.cart_value)):
            if value is not None:
                _check_amount_without_currency(name, value)
        return self


def _check_amount_without_currency(field: str, value: float) -> None:
    """An amount whose record names no currency: at most the decimals of any currency."""
    units = scaled(value, MAX_MINOR_UNITS)
    if units is None:
        raise ValueError(f"{field} {value} has more than {MAX_MINOR_UNITS} decimals")
    if units >= UNITS_CEILING:
        raise ValueError(f"{field} {value} has more than {MAX_DIGITS} digits with its decimals")


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
    stock: Count
    active: StrictBool = True

    @model_validator(mode="after")
    def _amounts_fit_the_currency(self) -> ProductUpdate:
        _check_amount("price", self.price, self.currency, self.schema_version)
        _check_amount("cost", self.cost, self.currency, self.schema_version)
        return self


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
    marketing_opt_in: StrictBool


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
    contribution: Number = Field(ge=0, le=1, description="Share of the score from this reason.")


class FraudAlert(Event):
    """One alert per suspicious transaction. Key: ``user_id``."""

    alert_id: Id
    transaction_id: Id
    user_id: Id
    merchant_id: Id
    amount: Money
    currency: CurrencyCode
    score: Number = Field(ge=0, le=1)
    priority: AlertPriority
    reasons: list[AlertReason] = Field(min_length=1)
    ruleset_version: Count
    model_version: str = Field(min_length=1, max_length=60)
    event_time: UtcDatetime
    detection_time: UtcDatetime

    @model_validator(mode="after")
    def _amount_fits_the_currency(self) -> FraudAlert:
        _check_amount("amount", self.amount, self.currency, self.schema_version)
        return self


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

    case_id: StrictInt = Field(ge=1, le=2**63 - 1)
    alert_id: Id
    transaction_id: Id
    user_id: Id
    merchant_id: Id
    verdict: Verdict
    reasons: list[str] = Field(description="Codes of the alert's reasons (rule ids and models).")
    features: dict[str, Number] | None = Field(
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
    value: Number
    final: StrictBool = Field(description="False while the window is open, True once it closed.")
    late_events: Count = Field(0, description="Events that arrived after the grace period.")
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
    partition: Count
    offset: Count
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


def parse_json(raw: bytes) -> Any:
    """One JSON document, refusing a key repeated in an object (jiter checks it; orjson
    would keep the last copy silently). Raises :class:`EventError`."""
    try:
        return jiter.from_json(raw, catch_duplicate_keys=True, allow_inf_nan=False)
    except ValueError as exc:
        message = str(exc)
        if "duplicate key" in message:
            raise EventError(
                f"a key appears twice in the record ({message}); send each field once",
                FailureStage.DECODE,
            ) from exc
        raise EventError(f"not valid JSON: {message}", FailureStage.DECODE) from exc


def decode(model: type[E], payload: bytes | str) -> E:
    """Parse and validate one record, or raise :class:`EventError` naming the field."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_RECORD_BYTES:
        raise EventError(
            f"record is {len(raw)} bytes, over the {MAX_RECORD_BYTES}-byte limit",
            FailureStage.DECODE,
        )
    data = parse_json(raw)
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
        schema["$id"] = f"https://ecap.dev/schemas/{name}/v{SCHEMA_VERSION}.json"
        schemas[name] = schema
    return schemas


def now_utc() -> datetime:
    return datetime.now(UTC)
