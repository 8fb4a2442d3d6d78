// Talking to the console's own JSON routes, and small DOM helpers shared by the views.
"use strict";

const api = {
  async get(path) {
    return api.send("GET", path);
  },

  // Resolves to the decoded body; rejects with an Error carrying the server's message.
  async send(method, path, body, contentType = "application/json") {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.body = contentType === "application/json" ? JSON.stringify(body) : body;
      options.headers["Content-Type"] = contentType;
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      connection.gone();
      throw new Error("the console is not answering: is make run still running?");
    }
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (response.status === 503) connection.waiting(data && data.message);
    if (!response.ok) {
      const error = new Error((data && data.message) || `HTTP ${response.status}`);
      error.status = response.status;
      error.body = data;
      throw error;
    }
    return data;
  },
};

// The pill in the header says what the page is waiting for, if anything.
const connection = {
  element: () => document.getElementById("connection"),
  set(kind, text) {
    const pill = connection.element();
    pill.className = `pill ${kind}`;
    pill.textContent = text;
  },
  ok(health) {
    connection.set("ok", `live · stage ${health.stage} · ${health.aws_endpoint}`);
  },
  waiting(what) {
    connection.set("waiting", `waiting for ${what || "the local cloud"}`);
  },
  gone() {
    connection.set("gone", "the console is not answering: start it with make run");
  },
};

// el("td", {class: "num"}, "3") builds an element; children may be strings or nodes.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Replaces a table's rows, keeping each row whose content did not change, so that the
// refresh every second does not take the keyboard focus away from its buttons.
function fillRows(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  const kept = new Map([...body.rows].map((row) => [row.outerHTML, row]));
  body.replaceChildren(...rows.map((row) => kept.get(row.outerHTML) || row));
}

function shortId(id) {
  return id ? `${id.slice(0, 8)}…` : "";
}

function report(elementId, text, isError = false) {
  const node = document.getElementById(elementId);
  node.textContent = text;
  node.className = isError ? "red" : "";
}
