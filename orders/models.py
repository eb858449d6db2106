"""S-360 orders, shaped like the output of `getOrderDetails` (Order Webhook V2).

Amounts are integers in thousandths of the currency unit (40000 is 40.00), as S-360 sends them.
Every write goes through `orders.services`, which bumps `sync_version` when, and only when,
the content changes.
"""

from django.db import models


class OrderType(models.TextChoices):
    SALE = "SALE"
    REFUND_CLIENT = "REFUND_CLIENT"
    REFUND_ORGANIZATION = "REFUND_ORGANIZATION"
    EXCHANGE_ORGANIZATION = "EXCHANGE_ORGANIZATION"
    EXCHANGE_CLIENT = "EXCHANGE_CLIENT"
    RESERVATION = "RESERVATION"
    RENEWAL = "RENEWAL"
    OPTION = "OPTION"
    RESERVATION_FREEING = "RESERVATION_FREEING"
    OPTION_FREEING = "OPTION_FREEING"
    ST_TRANSFER = "ST_TRANSFER"


# Order types that give money or seats back: their amounts may be negative.
REVERSING_ORDER_TYPES = frozenset(
    {
        OrderType.REFUND_CLIENT,
        OrderType.REFUND_ORGANIZATION,
        OrderType.EXCHANGE_CLIENT,
        OrderType.EXCHANGE_ORGANIZATION,
        OrderType.RESERVATION_FREEING,
        OrderType.OPTION_FREEING,
    }
)


class OrderState(models.TextChoices):
    INITIATED = "INITIATED"
    RESERVED = "RESERVED"
    IN_OPTION = "IN_OPTION"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"
    ABANDONED = "ABANDONED"
    EXPIRED = "EXPIRED"


class OrderOriginator(models.TextChoices):
    SALE = "SALE"
    DESK = "DESK"
    TICKETSHOP = "TICKETSHOP"
    EXTERNAL_SALE = "EXTERNAL_SALE"
    BATCH = "BATCH"
    RESALE_PLATFORM = "RESALE_PLATFORM"


class MovementType(models.TextChoices):
    SEAT = "SEAT", "Numbered seat"
    AREA = "AREA", "Unnumbered area"


class Order(models.Model):
    # S-360's orderId is the key everywhere (API paths, export, CRM dedupe), so it is the PK.
    order_id = models.BigIntegerField("orderId", primary_key=True)
    order_secret_id = models.CharField("orderSecretId", max_length=64, blank=True)
    order_state = models.CharField("orderState", max_length=32, choices=OrderState.choices)
    order_type = models.CharField("orderType", max_length=32, choices=OrderType.choices)
    order_originator = models.CharField(
        "orderOriginator", max_length=32, choices=OrderOriginator.choices
    )
    creation_date_time = models.DateTimeField("creationDateTime")
    reference_date = models.DateTimeField("referenceDate", null=True, blank=True)
    expiration_date = models.DateTimeField("expirationDate", null=True, blank=True)
    # Digits kept as text: contact numbers may carry leading zeros.
    contact_reference = models.CharField("contactReference", max_length=32, blank=True)
    sales_channel_code = models.CharField("salesChannelCode", max_length=32)
    sales_channel_name = models.CharField("salesChannelName", max_length=128, blank=True)
    currency_code = models.CharField("currency", max_length=8)
    currency_fraction_digit = models.PositiveSmallIntegerField("fractionDigit", default=2)
    currency_symbol = models.CharField("symbol", max_length=8, blank=True)
    sale_amount = models.BigIntegerField("saleAmount", default=0)
    pre_sale_amount = models.BigIntegerField("preSaleAmount", default=0)
    reservation_amount = models.BigIntegerField("reservationAmount", default=0)
    option_amount = models.BigIntegerField("optionAmount", default=0)
    waiting_account_balance_amount = models.BigIntegerField(
        "waitingAccountBalanceAmount", default=0
    )
    last_mod_date_time = models.DateTimeField("lastModDateTime", db_index=True)

    sync_version = models.PositiveIntegerField("syncVersion", default=1)
    # sha256 of the canonical content (without lastModDateTime): an identical re-save is a no-op.
    content_hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-creation_date_time", "-order_id"]
        indexes = [
            models.Index(fields=["-creation_date_time", "-order_id"], name="order_created_idx"),
            models.Index(fields=["contact_reference"], name="order_contact_idx"),
            models.Index(fields=["order_state", "-creation_date_time"], name="order_state_idx"),
            models.Index(fields=["order_type", "-creation_date_time"], name="order_type_idx"),
            models.Index(
                fields=["sales_channel_code", "-creation_date_time"], name="order_channel_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.order_id}"

    def format_amount(self, amount: int) -> str:
        """Return an amount in thousandths as a decimal string with the currency's digits."""
        return format_thousandths(amount, self.currency_fraction_digit)


def format_thousandths(amount: int, fraction_digits: int) -> str:
    """Exact decimal text of an amount in thousandths: (40000, 2) -> "40.00"; keeps any
    sub-unit digits that the currency's fraction digits would otherwise hide."""
    sign = "-" if amount < 0 else ""
    units, thousandths = divmod(abs(amount), 1000)
    decimals = f"{thousandths:03d}"
    keep = max(fraction_digits, len(decimals.rstrip("0")))
    return f"{sign}{units}.{decimals[:keep]}" if keep else f"{sign}{units}"


class Operation(models.Model):
    """One line of the order (`operationDatas[]`): a ticket, a product, charges..."""

    # The (order, operation_id) unique index serves the FK lookups: no second index to write.
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="operations", db_index=False
    )
    operation_id = models.BigIntegerField("operationId")
    type = models.CharField("type", max_length=32, blank=True)
    kind = models.CharField("kind", max_length=32, blank=True)
    quantity = models.PositiveIntegerField("quantity", default=1)
    base_price = models.BigIntegerField("basePrice", default=0)
    unit_price = models.BigIntegerField("unitPrice", default=0)
    total_amount = models.BigIntegerField("totalAmount", default=0)
    product_id = models.BigIntegerField("productId", null=True, blank=True)
    product_code = models.CharField("productCode", max_length=64, blank=True)
    product = models.CharField("product", max_length=255, blank=True)
    event_id = models.BigIntegerField("eventId", null=True, blank=True)
    performance_id = models.BigIntegerField("performanceId", null=True, blank=True)
    performance = models.CharField("performance", max_length=255, blank=True)
    seat_category_id = models.BigIntegerField("seatCategoryId", null=True, blank=True)
    audience_sub_category_id = models.BigIntegerField(
        "audienceSubCategoryId", null=True, blank=True
    )
    parent_operation_id = models.BigIntegerField("parentOperationId", null=True, blank=True)

    class Meta:
        ordering = ["order", "operation_id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "operation_id"], name="operation_unique")
        ]

    def __str__(self) -> str:
        return f"Operation {self.operation_id}"


class Movement(models.Model):
    """A seat or area movement of the order (`movementDatas[]`)."""

    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="movements", db_index=False
    )
    movement_id = models.BigIntegerField("movementId")
    type = models.CharField("type", max_length=8, choices=MovementType.choices)
    seat_id = models.BigIntegerField("seatId", null=True, blank=True)
    seat_category_id = models.BigIntegerField("seatCategoryId", null=True, blank=True)
    seat_category = models.CharField("seatCategory", max_length=128, blank=True)
    contingent_id = models.BigIntegerField("contingentId", null=True, blank=True)
    area_id = models.BigIntegerField("areaId", null=True, blank=True)

    class Meta:
        ordering = ["order", "movement_id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "movement_id"], name="movement_unique")
        ]

    def __str__(self) -> str:
        return f"Movement {self.movement_id}"
