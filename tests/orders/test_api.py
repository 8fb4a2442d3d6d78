"""Products, orders and customers through Chalice's test client, over moto."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.orders.helpers import order_body, seed_products

JSON = {"Content-Type": "application/json"}


def call(api, method, path, body=None, headers=None):
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    response = api.http.request(
        method.upper(), path, body=raw or b"", headers={**JSON, **(headers or {})}
    )
    payload = json.loads(response.body) if response.body else None
    return response.status_code, payload, response.headers


def place(api, body=None, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    status, order, _ = call(api, "post", "/orders", body or order_body(), headers)
    assert status == 201, order
    return order


@pytest.fixture
def shop(api, services):
    seed_products(services)
    return api


def assert_error(result, status, code, field=None):
    got_status, body, _ = result
    assert got_status == status, body
    assert body["error"] == code and body["message"]
    if field:
        assert field in [d["field"] for d in body["details"]], body["details"]
    return body


# -- products --------------------------------------------------------------------------


def test_a_product_is_created_then_replaced_keeping_what_is_reserved(api, services):
    body = {"name": "Widget", "price": "12.5", "stock": 10}
    status, product, _ = call(api, "put", "/products/widget", body)
    assert (status, product) == (
        201,
        {"product_id": "widget", "name": "Widget", "price": "12.50", "stock": 10, "reserved": 0},
    )
    # Open orders hold 3 units; a restock must not release them.
    services.clients.dynamodb.update_item(
        TableName=services.settings.products_table,
        Key={"product_id": {"S": "widget"}},
        UpdateExpression="SET reserved = :r",
        ExpressionAttributeValues={":r": {"N": "3"}},
    )
    status, product, _ = call(api, "put", "/products/widget", {**body, "price": 13, "stock": 50})
    assert status == 200
    assert (product["price"], product["stock"], product["reserved"]) == ("13.00", 50, 3)
    assert call(api, "get", "/products/widget")[:2] == (200, product)


def test_product_errors(api):
    assert_error(call(api, "get", "/products/nope"), 404, "not_found")
    assert_error(call(api, "put", "/products/bad%20id", {}), 400, "bad_request", "product_id")
    body = {"name": "W", "price": "1.001", "stock": 1}
    assert_error(call(api, "put", "/products/w", body), 422, "validation_failed", "price")
    assert_error(call(api, "put", "/products/w", b"{not json"), 400, "bad_request", "body")


@pytest.mark.parametrize("price", ["1e3", "1_000", "+5", "\u0665", "  5", "5\n", "0x10"])
def test_a_price_string_that_is_not_plain_ascii_digits_is_refused_naming_the_field(api, price):
    body = {"name": "W", "price": price, "stock": 1}
    assert_error(call(api, "put", "/products/w", body), 422, "validation_failed", "price")
    assert_error(call(api, "get", "/products/w"), 404, "not_found")


# -- placing orders ----------------------------------------------------------------------


def test_an_order_is_priced_from_the_products_table(shop):
    order = place(shop, order_body(widget=2, gadget=3))
    assert order["status"] == "PENDING" and order["version"] == 1 and order["reason"] is None
    assert order["items"] == [
        {"product_id": "widget", "quantity": 2, "unit_price": "12.50", "line_total": "25.00"},
        {"product_id": "gadget", "quantity": 3, "unit_price": "3.99", "line_total": "11.97"},
    ]
    assert order["total"] == "36.97"
    assert order["created_at"] == order["updated_at"]
    assert set(order) == {
        "order_id",
        "customer_id",
        "customer_email",
        "items",
        "total",
        "status",
        "version",
        "reason",
        "created_at",
        "updated_at",
    }
    assert call(shop, "get", f"/orders/{order['order_id']}")[:2] == (200, order)


def test_a_client_cannot_set_prices(shop):
    body = order_body()
    body["items"][0]["unit_price"] = "0.01"
    assert_error(
        call(shop, "post", "/orders", body), 422, "validation_failed", "items.0.unit_price"
    )


def test_unknown_products_are_named(shop):
    body = order_body(widget=1, ghost=1, phantom=2)
    error = assert_error(
        call(shop, "post", "/orders", body), 422, "validation_failed", "items.1.product_id"
    )
    assert "ghost" in error["message"] and "phantom" in error["message"]
    assert [d["field"] for d in error["details"]] == ["items.1.product_id", "items.2.product_id"]


def test_a_malformed_email_is_a_422(shop):
    body = {**order_body(), "customer_email": "not-an-email"}
    assert_error(call(shop, "post", "/orders", body), 422, "validation_failed", "customer_email")


def test_money_in_the_table_is_exact(shop, services):
    order = place(shop, order_body(gadget=3))
    item = services.clients.dynamodb.get_item(
        TableName=services.settings.orders_table, Key={"order_id": {"S": order["order_id"]}}
    )["Item"]
    assert Decimal(item["total"]["N"]) == Decimal("11.97")


# -- idempotency -------------------------------------------------------------------------


def test_a_retried_post_returns_the_same_order(shop, services):
    first = place(shop, key="key-1")
    status, again, headers = call(
        shop, "post", "/orders", order_body(), {"Idempotency-Key": "key-1"}
    )
    assert status == 201 and again == first
    assert headers.get("Idempotent-Replayed") == "true"
    orders, _ = services.orders.by_customer("cust-1", 10, None)
    assert [o["order_id"] for o in orders] == [first["order_id"]]


def test_the_same_key_with_another_body_is_refused(shop):
    place(shop, key="key-1")
    result = call(shop, "post", "/orders", order_body(widget=3), {"Idempotency-Key": "key-1"})
    assert_error(result, 422, "idempotency_key_reused", "Idempotency-Key")


def test_keys_are_kept_at_least_a_day(shop, services):
    place(shop, key="key-ttl")
    record = services.clients.dynamodb.get_item(
        TableName=services.settings.idempotency_table, Key={"id": {"S": "order-key#key-ttl"}}
    )["Item"]
    assert int(record["expires_at"]["N"]) >= services.clock.now().timestamp() + 24 * 3600 - 5
    ttl = services.clients.dynamodb.describe_time_to_live(
        TableName=services.settings.idempotency_table
    )["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_an_expired_key_may_be_used_again(shop, services):
    first = place(shop, key="key-old")
    services.clients.dynamodb.update_item(
        TableName=services.settings.idempotency_table,
        Key={"id": {"S": "order-key#key-old"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    second = place(shop, order_body(widget=5), key="key-old")
    assert second["order_id"] != first["order_id"]


@pytest.mark.parametrize("key", ["", " leading", "x" * 256, "tab\tinside", "ünïcode"])
def test_a_malformed_idempotency_key_is_a_400(shop, key):
    result = call(shop, "post", "/orders", order_body(), {"Idempotency-Key": key})
    assert_error(result, 400, "bad_request", "Idempotency-Key")


# -- moving orders -----------------------------------------------------------------------


def patch(api, order_id, status, version=None):
    headers = {"If-Match": str(version)} if version is not None else {}
    return call(api, "patch", f"/orders/{order_id}", {"status": status}, headers)


def test_a_client_cancels_a_pending_order(shop):
    order = place(shop)
    status, cancelled, _ = patch(shop, order["order_id"], "CANCELLED", version=1)
    assert status == 200
    assert (cancelled["status"], cancelled["version"]) == ("CANCELLED", 2)
    assert cancelled["updated_at"] >= order["updated_at"]
    # Asking again for the status it has is a no-op, not an error.
    assert patch(shop, order["order_id"], "CANCELLED")[:2] == (200, cancelled)


@pytest.mark.parametrize("target", ["CONFIRMED", "REJECTED"])
def test_system_moves_are_409_for_a_client(shop, target):
    order = place(shop)
    body = assert_error(patch(shop, order["order_id"], target), 409, "invalid_transition")
    assert body["current_status"] == "PENDING" and body["allowed"] == ["CANCELLED"]


def test_an_invalid_transition_names_current_and_allowed(shop):
    order = place(shop)
    body = assert_error(patch(shop, order["order_id"], "DELIVERED"), 409, "invalid_transition")
    assert body["current_status"] == "PENDING" and body["allowed"] == ["CANCELLED"]
    patch(shop, order["order_id"], "CANCELLED")
    body = assert_error(patch(shop, order["order_id"], "SHIPPED"), 409, "invalid_transition")
    assert body["current_status"] == "CANCELLED" and body["allowed"] == []


def test_a_stale_if_match_is_412_and_changes_nothing(shop, services):
    order = place(shop)
    body = assert_error(
        patch(shop, order["order_id"], "CANCELLED", version=7),
        412,
        "precondition_failed",
        "If-Match",
    )
    assert body["current_version"] == 1
    assert services.orders.get(order["order_id"])["status"] == "PENDING"


def test_a_repeated_patch_without_if_match_or_with_the_current_version_is_a_no_op(shop, services):
    order = place(shop)
    status, cancelled, _ = patch(shop, order["order_id"], "CANCELLED", version=1)
    assert (status, cancelled["version"]) == (200, 2)
    for version in (None, 2):
        assert patch(shop, order["order_id"], "CANCELLED", version=version)[:2] == (200, cancelled)
    assert services.orders.get(order["order_id"]) == cancelled  # nothing written


def test_a_stale_if_match_is_412_even_when_the_order_already_has_the_status(shop, services):
    """If-Match is a precondition: the client's copy is out of date, whatever it asks for.
    A client whose PATCH landed but whose answer was lost learns so from the 412's
    ``current_version`` (or a GET), never from a silent 200."""
    order = place(shop)
    assert patch(shop, order["order_id"], "CANCELLED", version=1)[0] == 200
    body = assert_error(
        patch(shop, order["order_id"], "CANCELLED", version=1),
        412,
        "precondition_failed",
        "If-Match",
    )
    assert body["current_version"] == 2
    assert services.orders.get(order["order_id"])["version"] == 2


@pytest.mark.parametrize(
    ("verdict", "problem"),
    [("CONFIRMED", "set by the system"), ("REJECTED", "set by the system")],
)
def test_a_client_may_never_ask_for_a_system_status_even_one_the_order_already_has(
    shop, services, verdict, problem
):
    order = place(shop)
    services.orders.set_status(
        order["order_id"], expected_status="PENDING", expected_version=1, status=verdict
    )
    body = assert_error(patch(shop, order["order_id"], verdict), 409, "invalid_transition")
    [detail] = body["details"]
    assert detail["field"] == "status" and problem in detail["problem"]
    assert body["current_status"] == verdict
    # The actor's rule is about the request, so it comes before the precondition too.
    stale = assert_error(
        patch(shop, order["order_id"], verdict, version=1), 409, "invalid_transition"
    )
    assert stale["details"] == body["details"]
    assert services.orders.get(order["order_id"])["version"] == 2


def test_a_client_cannot_ask_for_pending_which_no_move_leads_to(shop):
    order = place(shop)
    body = assert_error(patch(shop, order["order_id"], "PENDING"), 409, "invalid_transition")
    assert "no move leads to it" in body["details"][0]["problem"]


def test_patch_errors(shop):
    order = place(shop)
    assert_error(patch(shop, "0" * 32, "CANCELLED"), 404, "not_found")
    assert_error(patch(shop, "not-an-id", "CANCELLED"), 404, "not_found")
    assert_error(patch(shop, order["order_id"], "LOST"), 422, "validation_failed", "status")
    result = call(
        shop, "patch", f"/orders/{order['order_id']}", {"status": "CANCELLED"}, {"If-Match": "v1"}
    )
    assert_error(result, 400, "bad_request", "If-Match")


def test_get_and_patch_send_the_version_as_an_etag_that_if_match_takes_back(shop):
    order = place(shop)
    status, _, headers = call(shop, "get", f"/orders/{order['order_id']}")
    assert status == 200 and headers["ETag"] == '"1"'
    status, moved, headers = call(
        shop,
        "patch",
        f"/orders/{order['order_id']}",
        {"status": "CANCELLED"},
        {"If-Match": headers["ETag"]},
    )
    assert status == 200 and moved["version"] == 2 and headers["ETag"] == '"2"'


@pytest.mark.parametrize("form", ["1", '"1"', 'W/"1"', ' "1"\t'])
def test_if_match_takes_each_documented_form(shop, form):
    order = place(shop)
    status, moved, _ = call(
        shop, "patch", f"/orders/{order['order_id']}", {"status": "CANCELLED"}, {"If-Match": form}
    )
    assert status == 200 and moved["status"] == "CANCELLED"


@pytest.mark.parametrize("form", ['"1', '1"', "W/1", "*", '"1", "2"', 'W/ "1"', "\u0661", ""])
def test_if_match_refuses_every_other_form(shop, form):
    order = place(shop)
    result = call(
        shop, "patch", f"/orders/{order['order_id']}", {"status": "CANCELLED"}, {"If-Match": form}
    )
    assert_error(result, 400, "bad_request", "If-Match")


def test_a_lost_update_is_impossible(shop, services):
    """A move that read version 1 cannot land once another move made version 2."""
    from chalicelib.orders.store import StaleOrder

    order = place(shop)
    services.orders.set_status(
        order["order_id"], expected_status="PENDING", expected_version=1, status="CONFIRMED"
    )
    with pytest.raises(StaleOrder):
        services.orders.set_status(
            order["order_id"], expected_status="PENDING", expected_version=1, status="CANCELLED"
        )
    assert services.orders.get(order["order_id"])["status"] == "CONFIRMED"


# -- a customer's orders -------------------------------------------------------------


def test_a_customers_orders_come_newest_first_in_pages(shop):
    placed = [place(shop, order_body("cust-9", widget=n))["order_id"] for n in range(1, 6)]
    place(shop, order_body("someone-else"))
    seen, cursor = [], None
    while True:
        path = "/customers/cust-9/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page, _ = call(shop, "get", path)
        assert status == 200 and len(page["items"]) <= 2
        seen += [o["order_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(placed))


def test_customer_cursors_only_resume_their_own_query(shop):
    for n in range(3):
        place(shop, order_body("cust-a", widget=n + 1))
    _, page, _ = call(shop, "get", "/customers/cust-a/orders?limit=1")
    cursor = page["next_cursor"]
    assert_error(
        call(shop, "get", f"/customers/cust-b/orders?cursor={cursor}"), 400, "bad_request", "cursor"
    )
    assert_error(
        call(shop, "get", "/customers/cust-a/orders?cursor=garbage"), 400, "bad_request", "cursor"
    )
    assert_error(call(shop, "get", "/customers/cust-a/orders?limit=0"), 400, "bad_request", "limit")
    assert_error(call(shop, "get", "/customers/cust-a/orders?sort=asc"), 400, "bad_request", "sort")
