// Products, orders by status, one order's history, and the order actions, all through
// the app's own API.
"use strict";

const ordersView = (() => {
  const STATUSES = ["PENDING", "CONFIRMED", "REJECTED", "SHIPPED", "DELIVERED", "CANCELLED"];
  const MOVES = { CONFIRMED: ["SHIPPED", "CANCELLED"], PENDING: ["CANCELLED"], SHIPPED: ["DELIVERED"] };
  const VERBS = { SHIPPED: "Ship", DELIVERED: "Deliver", CANCELLED: "Cancel" };
  let selected = null;

  async function place(event) {
    event.preventDefault();
    const form = event.target;
    const body = {
      customer_id: form.customer_id.value,
      customer_email: form.customer_email.value,
      items: [{ product_id: form.product_id.value, quantity: Number(form.quantity.value) }],
    };
    try {
      const order = await api.send("POST", "/api/orders", body);
      report("order-result", `placed order ${order.order_id}: ${order.status}, total ${order.total}`);
      selected = order.order_id;
      await refresh();
    } catch (error) {
      report("order-result", `refused: ${error.message} ${JSON.stringify((error.body && error.body.details) || "")}`, true);
    }
  }

  async function move(orderId, status) {
    try {
      await api.send("PATCH", `/api/orders/${orderId}`, { status });
      report("order-result", `order ${shortId(orderId)} → ${status}`);
    } catch (error) {
      report("order-result", `${status} refused: ${error.message}`, true);
    }
    await refresh();
  }

  async function showOrder(orderId) {
    selected = orderId;
    const found = await api.get(`/api/orders/${orderId}`);
    const order = found.order;
    const actions = (MOVES[order.status] || []).map((status) =>
      el("button", { type: "button", "data-move": status, onclick: () => move(orderId, status) }, VERBS[status]));
    const events = found.events.map((e) => el("li", {}, `v${e.version} ${e.event_type}: ${e.old_status || "–"} → ${e.new_status} (${e.occurred_at})`));
    const mails = found.mails.map((m) => el("li", {}, `${m.Subject} → ${(m.Destination.ToAddresses || []).join(", ")}`));
    document.getElementById("order-detail").replaceChildren(
      el("h3", {}, `Order ${order.order_id}`),
      el("p", { id: "order-detail-status" }, `${order.status} · version ${order.version} · total ${order.total}${order.reason ? ` · ${order.reason}` : ""}`),
      el("div", {}, actions),
      el("h4", {}, "Events"), el("ul", { id: "order-events" }, events),
      el("h4", {}, "Mails"), el("ul", { id: "order-mails" }, mails));
  }

  async function refresh() {
    const [products, orders] = await Promise.all([
      api.get("/api/products"),
      api.get(`/api/orders${document.getElementById("order-status").value ? `?status=${document.getElementById("order-status").value}` : ""}`),
    ]);
    fillRows("products", (products.items || []).map((p) => el("tr", {},
      el("td", {}, p.product_id), el("td", { class: "num" }, p.stock), el("td", { class: "num" }, p.reserved))));
    const picker = document.getElementById("order-product");
    const choices = (products.items || []).map((p) => p.product_id);
    if ([...picker.options].map((o) => o.value).join() !== choices.join()) {
      picker.replaceChildren(...choices.map((id) => el("option", { value: id }, id)));
    }
    fillRows("orders", orders.items.map((o) => el("tr", { "data-order": o.order_id },
      el("td", {}, el("button", { type: "button", onclick: () => showOrder(o.order_id) }, shortId(o.order_id))),
      el("td", {}, o.customer_id), el("td", { class: "order-status" }, o.status),
      el("td", { class: "num" }, o.total), el("td", { class: "num" }, o.version))));
    if (selected) await showOrder(selected);
  }

  function init() {
    const filter = document.getElementById("order-status");
    filter.append(...STATUSES.map((s) => el("option", { value: s }, s)));
    filter.addEventListener("change", refresh);
    document.getElementById("order-form").addEventListener("submit", place);
  }

  return { init, refresh };
})();
