"""eventflow's Chalice app: routes and event handlers, and nothing else.

Each handler translates its event into plain data and calls ``chalicelib``.
The per-stage setting ``EVENTFLOW_INGEST_TRIGGER`` decides how uploads reach
the ingest code: ``sqs`` (S3 notifies a queue; needed by ``chalice package``,
which refuses ``on_s3_event``) or ``s3`` (``on_s3_event``, for ``chalice
deploy`` against an existing bucket, and Terraform). Both call the same code.
"""

from chalice import Chalice, CORSConfig, IAMAuthorizer, Response
from chalice.app import CaseInsensitiveMapping

from chalicelib import audit, rest
from chalicelib.concurrency import MAXIMUM_CONCURRENCY
from chalicelib.config import UPLOADS_PREFIX, Settings
from chalicelib.observability import invocation, logger
from chalicelib.orders import analytics_api
from chalicelib.orders import api as orders_api
from chalicelib.orders import handlers as orders_handlers
from chalicelib.readings import api as readings_api
from chalicelib.readings import handlers as readings_handlers
from chalicelib.services import services

settings = Settings.from_env()
# The app and Powertools' service share the logger named "eventflow". Powertools
# configures it (JSON, INFO); Chalice's own setup would set it to ERROR and stop
# it propagating whenever its handler's stream is not the sys.stdout of the
# moment (a test's captured output), dropping every INFO line, the audit trail's too.
app = Chalice(app_name="eventflow", configure_logs=False)

# Write routes, and every route over orders (they carry customers' personal
# data), need SigV4-signed requests (IAM auth) in deployed stages; the local
# stage leaves them open so the local cloud works without credentials.
iam_auth = IAMAuthorizer() if settings.stage != "local" else None
# CORS only when a stage names its browser origin; never a wildcard.
cors = CORSConfig(allow_origin=settings.cors_origin) if settings.cors_origin else None


def _respond(call, *args):
    """Run one API operation and shape its result or its error as JSON.

    An operation returns ``(status, body)`` or ``(status, body, headers)``.
    Errors: ours as raised; an AWS dependency that cannot be reached or used
    as a 503 naming it (``rest.known_error``); anything else is a bug, which
    Chalice answers with a 500, shaped by the middleware below.
    """
    headers: dict[str, str] = {}
    # Each request publishes its own metrics (an order placed, say) when it ends.
    with invocation("api_handler", settings.stage):
        try:
            status, body, *extra = call(services(), *args)
            if extra:
                headers = extra[0]
        except Exception as error:
            known = rest.known_error(error)
            if known is None:
                raise
            if known.status >= 500:
                logger.warning(known.message, extra={"error_type": type(error).__name__})
            status, body = known.status, known.to_body()
    return _json(status, body, headers)


def _json(status, body, headers=None):
    headers = headers or {}
    if body is None:
        return Response(body="", status_code=status, headers=headers)
    return Response(
        body=rest.to_json(body), status_code=status, headers={**rest.JSON_HEADERS, **headers}
    )


@app.middleware("http")
def audit_trail(event, get_response):
    # Registered first, so it sees the final status of every request.
    return audit.around(event, get_response)


@app.middleware("http")
def path_parameters_decoded_as_api_gateway_does(event, get_response):
    # API Gateway percent-decodes path parameters before the function runs;
    # Chalice's local server (chalice local, its test client, the local
    # cloud) passes them as sent. Decode those, so "Lab%203" is "Lab 3" both ways.
    if event.uri_params and rest.from_local_gateway(event.context):
        try:
            rest.decode_path_parameters(event.uri_params)
        except Exception as error:
            known = rest.known_error(error)
            if known is None:
                raise
            return _json(known.status, known.to_body())
    return get_response(event)


@app.middleware("http")
def bodyless_requests_have_no_content_type(event, get_response):
    # Chalice checks Content-Type against the route before the view runs; a
    # GET or DELETE without a body has no content to type, so its header is
    # dropped rather than answered with 415.
    if event.method in rest.BODYLESS_METHODS and not event.raw_body:
        headers = {k: v for k, v in event.headers.items() if k != "content-type"}
        event.headers = CaseInsensitiveMapping(headers)
    return get_response(event)


@app.middleware("http")
def framework_errors_as_json(event, get_response):
    # Chalice answers 405 and 415 itself, in its own shape; give them ours.
    response = get_response(event)
    if response.status_code >= 400 and isinstance(response.body, dict) and "Code" in response.body:
        body = rest.framework_error(response.status_code, response.body.get("Message", ""))
        response.body = rest.to_json(body)
        response.headers.update(rest.JSON_HEADERS)
    return response


def _request():
    request = app.current_request
    return request.query_params, request.raw_body, request.headers


@app.route("/health", methods=["GET"], cors=cors)
def health():
    return _respond(rest.health, *_request())


@app.route("/uploads", methods=["POST"], authorizer=iam_auth, cors=cors)
def create_upload():
    return _respond(readings_api.create_upload, *_request())


@app.route("/readings", methods=["POST"], authorizer=iam_auth, cors=cors)
def create_reading():
    return _respond(readings_api.create_reading, *_request())


@app.route("/readings", methods=["GET"], cors=cors)
def list_readings_by_date():
    return _respond(readings_api.list_readings_by_date, *_request())


@app.route("/readings/{location}", methods=["GET"], cors=cors)
def list_location_readings(location):
    return _respond(readings_api.list_location_readings, location, *_request())


@app.route("/readings/{location}/{reading_id}", methods=["GET"], cors=cors)
def get_reading(location, reading_id):
    return _respond(readings_api.get_reading, location, reading_id, *_request())


@app.route(
    "/readings/{location}/{reading_id}", methods=["PUT", "DELETE"], authorizer=iam_auth, cors=cors
)
def change_reading(location, reading_id):
    put = app.current_request.method == "PUT"
    operation = readings_api.replace_reading if put else readings_api.delete_reading
    return _respond(operation, location, reading_id, *_request())


# Jobs name the uploaders' files, object versions and the rejects reports.
@app.route("/ingests", methods=["GET"], authorizer=iam_auth, cors=cors)
def list_ingests():
    return _respond(readings_api.list_ingests, *_request())


@app.route("/ingests/{ingest_id}", methods=["GET"], authorizer=iam_auth, cors=cors)
def get_ingest(ingest_id):
    return _respond(readings_api.get_ingest, ingest_id, *_request())


# -- orders --------------------------------------------------------------------


@app.route("/products/{product_id}", methods=["PUT"], authorizer=iam_auth, cors=cors)
def put_product(product_id):
    return _respond(orders_api.put_product, product_id, *_request())


@app.route("/products/{product_id}", methods=["GET"], authorizer=iam_auth, cors=cors)
def get_product(product_id):
    return _respond(orders_api.get_product, product_id, *_request())


@app.route("/orders", methods=["POST"], authorizer=iam_auth, cors=cors)
def create_order():
    return _respond(orders_api.create_order, *_request())


@app.route("/orders/{order_id}", methods=["GET"], authorizer=iam_auth, cors=cors)
def get_order(order_id):
    return _respond(orders_api.get_order, order_id, *_request())


@app.route("/orders/{order_id}", methods=["PATCH"], authorizer=iam_auth, cors=cors)
def change_order(order_id):
    return _respond(orders_api.change_order, order_id, *_request())


@app.route("/customers/{customer_id}/orders", methods=["GET"], authorizer=iam_auth, cors=cors)
def list_customer_orders(customer_id):
    return _respond(orders_api.list_customer_orders, customer_id, *_request())


@app.on_sqs_message(
    queue=settings.order_intake_queue,
    batch_size=10,
    maximum_concurrency=MAXIMUM_CONCURRENCY["intake_orders"],
)
def intake_orders(event):
    return orders_handlers.intake_orders(event.to_dict(), event.context, services())


@app.on_dynamodb_record(
    stream_arn=settings.orders_stream_arn, batch_size=100, starting_position="TRIM_HORIZON"
)
def publish_order_events(event):
    return orders_handlers.publish_order_events(event.to_dict(), event.context, services())


@app.on_sqs_message(
    queue=settings.inventory_queue,
    batch_size=10,
    maximum_concurrency=MAXIMUM_CONCURRENCY["update_inventory"],
)
def update_inventory(event):
    return orders_handlers.update_inventory(event.to_dict(), event.context, services())


# -- orders: notifications ------------------------------------------------------


@app.on_sqs_message(
    queue=settings.notifications_queue,
    batch_size=10,
    maximum_concurrency=MAXIMUM_CONCURRENCY["send_notifications"],
)
def send_notifications(event):
    return orders_handlers.send_notifications(event.to_dict(), event.context, services())


# -- orders: analytics ------------------------------------------------------------


@app.route("/analytics/daily/{date}", methods=["GET"], authorizer=iam_auth, cors=cors)
def get_daily_analytics(date):
    return _respond(analytics_api.get_daily, date, *_request())


@app.on_sqs_message(
    queue=settings.analytics_queue,
    batch_size=10,
    maximum_concurrency=MAXIMUM_CONCURRENCY["update_analytics"],
)
def update_analytics(event):
    return orders_handlers.update_analytics(event.to_dict(), event.context, services())


# -- readings ingest -------------------------------------------------------------

if settings.ingest_trigger == "sqs":

    @app.on_sqs_message(
        queue=settings.s3_events_queue,
        batch_size=1,
        maximum_concurrency=MAXIMUM_CONCURRENCY["ingest_from_queue"],
    )
    def ingest_from_queue(event):
        return readings_handlers.ingest_from_queue(event.to_dict(), event.context, services())

else:

    @app.on_s3_event(
        bucket=settings.uploads_bucket,
        events=["s3:ObjectCreated:*"],
        prefix=UPLOADS_PREFIX,
        suffix=".csv",
    )
    def ingest_from_s3(event):
        readings_handlers.ingest_from_s3(event.to_dict(), event.context, services())


# One chunk (up to 1,000 rows, 40 BatchWriteItem calls) per invocation: with
# more, one invocation writes them one after another while Lambda's other
# pollers find the queue empty.
@app.on_sqs_message(
    queue=settings.ingest_queue,
    batch_size=1,
    maximum_concurrency=MAXIMUM_CONCURRENCY["write_readings"],
)
def write_readings(event):
    return readings_handlers.write_readings(event.to_dict(), event.context, services())
