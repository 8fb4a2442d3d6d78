// The pipeline map: boxes placed by the server (from the declaration), arrows between
// them, and each box's live figures refreshed from /api/state.
"use strict";

const mapView = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const BOX = { width: 152, height: 62, gapX: 30, gapY: 12 };
  const boxes = new Map();

  function svg(tag, attributes = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  function position(node) {
    return {
      x: 10 + node.column * (BOX.width + BOX.gapX),
      y: 10 + node.row * (BOX.height + BOX.gapY),
    };
  }

  function draw(map) {
    const columns = Math.max(...map.nodes.map((n) => n.column)) + 1;
    const rows = Math.max(...map.nodes.map((n) => n.row)) + 1;
    const root = svg("svg", {
      width: 20 + columns * (BOX.width + BOX.gapX),
      height: 20 + rows * (BOX.height + BOX.gapY),
      role: "img",
      "aria-label": "Pipeline map",
    });
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8792a0" }));
    defs.append(marker);
    root.append(defs);
    const byId = new Map(map.nodes.map((n) => [n.id, n]));
    for (const edge of map.edges) {
      const a = position(byId.get(edge.from));
      const b = position(byId.get(edge.to));
      const x1 = a.x + BOX.width, y1 = a.y + BOX.height / 2;
      const x2 = b.x, y2 = b.y + BOX.height / 2;
      const bend = Math.max(20, (x2 - x1) / 2);
      root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
    }
    for (const node of map.nodes) {
      const { x, y } = position(node);
      const group = svg("g", { class: `node ${node.kind}`, "data-node": node.id });
      group.append(svg("rect", { x, y, width: BOX.width, height: BOX.height, rx: 5 }));
      const title = svg("text", { x: x + 8, y: y + 18, "font-weight": "600" });
      title.textContent = node.label;
      const figures = svg("text", { x: x + 8, y: y + 35, class: "figures" });
      group.append(title, figures);
      let dead = null;
      if (node.dlq) {
        const badge = svg("g", { class: "dlq-badge", "data-dlq": node.dlq });
        badge.append(svg("rect", { x: x + 4, y: y + 41, width: BOX.width - 8, height: 17, rx: 3 }));
        dead = svg("text", { x: x + 8, y: y + 54 });
        dead.textContent = "DLQ";
        badge.append(dead);
        group.append(badge);
        boxes.set(`queue:${node.dlq}`, { group: badge, figures: dead, kind: "dlq" });
      }
      root.append(group);
      boxes.set(node.id, { group, figures, kind: node.kind });
    }
    document.getElementById("map").replaceChildren(root);
  }

  function set(id, text, classes = {}) {
    const box = boxes.get(id);
    if (!box) return;
    box.figures.textContent = text;
    for (const [name, on] of Object.entries(classes)) box.group.classList.toggle(name, on);
  }

  function update(state) {
    for (const queue of state.queues || []) {
      if (queue.error) continue;
      const isFailureQueue = queue.name === queue.dlq_name;
      if (!isFailureQueue) {
        set(`queue:${queue.key}`, `${queue.visible} visible · ${queue.in_flight} in flight`);
      }
      const dead = queue.dlq_visible + queue.dlq_in_flight;
      const label = isFailureQueue ? "" : "DLQ: ";
      set(`queue:${queue.dlq_key}`, `${label}${dead} dead letter${dead === 1 ? "" : "s"}`, { red: dead > 0 });
    }
    const durations = state.durations || {};
    for (const fn of (state.functions && state.functions.items) || []) {
      const last = durations[fn.function] !== undefined ? ` · ${durations[fn.function]} ms` : "";
      set(`function:${fn.function}`, `${fn.invocations} inv · ${fn.errors} err${last}`);
    }
    for (const table of state.tables || []) {
      if (!table.error) set(`table:${table.key}`, `${table.items} items`);
    }
    for (const mapping of (state.streams && state.streams.items) || []) {
      if (!mapping.table) continue;
      const age = mapping.iterator_age_ms;
      const text = age === null || age === undefined ? "caught up" : `iterator age ${(age / 1000).toFixed(1)} s`;
      set(`stream:${mapping.table}`, mapping.stalled ? `STALLED · ${text}` : text, { stalled: Boolean(mapping.stalled) });
    }
    const sent = state.mail && state.mail.sent;
    if (sent !== undefined && sent !== null) set("ses", `${sent} sent`);
  }

  return { draw, update };
})();
