// Queues and their dead letters: peek decodes as `ops dlq peek` does, redrive and
// replay run the ops code paths after an in-page confirmation.
"use strict";

const queuesView = (() => {
  function confirmAction(text) {
    const dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
      dialog.showModal();
      document.getElementById("confirm-yes").focus();
    });
  }

  async function peek(key) {
    const found = await api.get(`/api/queues/${key}/peek`);
    const rows = found.messages.map((m) => el("tr", {},
      el("td", {}, shortId(m.message_id)),
      el("td", {}, m.message_attributes && m.message_attributes.eventflow_rejected_reason
        ? m.message_attributes.eventflow_rejected_reason.StringValue : ""),
      el("td", {}, el("pre", {}, JSON.stringify(m.summary, null, 1))),
      el("td", {}, el("pre", {}, m.body))));
    document.getElementById("peek").replaceChildren(
      el("h3", {}, `${found.dlq}: ${found.messages.length} message(s)`),
      el("table", { id: "peek-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "Message"), el("th", {}, "Rejected because"), el("th", {}, "Decoded"), el("th", {}, "Body"))),
        el("tbody", {}, rows)));
  }

  async function act(key, action, description) {
    if (!(await confirmAction(description))) return;
    try {
      const result = await api.send("POST", `/api/queues/${key}/${action}`);
      const moved = action === "redrive"
        ? `moved ${result.moved} message(s) from ${result.dlq} to ${result.queue}; ${result.failed.length} failed`
        : `replayed ${(result.replayed || []).length} record(s) from ${result.queue}; ${(result.failed || []).length} failed`;
      report("queue-result", moved, (result.failed || []).length > 0);
    } catch (error) {
      report("queue-result", `${action} failed: ${error.message}`, true);
    }
  }

  function row(queue) {
    const failureQueue = queue.name === queue.dlq_name;
    const dead = queue.dlq_visible + queue.dlq_in_flight;
    const actions = [el("button", { type: "button", onclick: () => peek(queue.key) }, "Peek")];
    if (failureQueue) {
      actions.push(el("button", { type: "button", class: "danger", onclick: () => act(queue.key, "replay", `Replay every record in ${queue.name}?`) }, "Replay"));
    } else {
      actions.push(el("button", { type: "button", class: "danger", onclick: () => act(queue.key, "redrive", `Move the ${dead} message(s) of ${queue.dlq_name} back to ${queue.name}?`) }, "Redrive"));
    }
    return el("tr", { "data-queue": queue.key },
      el("td", {}, queue.key),
      el("td", { class: "num" }, failureQueue ? "–" : queue.visible),
      el("td", { class: "num" }, failureQueue ? "–" : queue.in_flight),
      el("td", { class: "num" }, el("span", { class: dead > 0 ? "red dlq-count" : "dlq-count" }, dead)),
      el("td", {}, actions));
  }

  function update(state) {
    fillRows("queues", (state.queues || []).filter((q) => !q.error).map(row));
  }

  return { update };
})();
