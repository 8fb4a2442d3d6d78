// The SES outbox: every message the notifications consumer sent.
"use strict";

const mailView = (() => {
  async function refresh() {
    const outbox = await api.get("/api/mail");
    fillRows("mail", outbox.messages.slice().reverse().map((m) => el("tr", {},
      el("td", {}, (m.Destination.ToAddresses || []).join(", ")),
      el("td", {}, m.Subject),
      el("td", {}, el("pre", {}, (m.Body && m.Body.text_part) || "")))));
  }
  return { refresh };
})();
