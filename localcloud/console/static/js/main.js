// Navigation between the views, and the refresh loop: the map and the queues every
// second, the open view's own data with them (metrics less often).
"use strict";

(() => {
  const REFRESH_MS = 1000;
  const METRICS_EVERY = 5;
  const views = { ingest: ingestView.refresh, orders: ordersView.refresh, mail: mailView.refresh, metrics: metricsView.refresh };
  let current = "pipeline";
  let tick = 0;
  let drawn = false;

  function show(view) {
    current = view;
    for (const button of document.querySelectorAll("nav button")) {
      if (button.dataset.view === view) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
    for (const section of document.querySelectorAll("main > section")) {
      section.hidden = section.id !== `view-${view}`;
    }
    if (views[view]) views[view]().catch(() => {});
  }

  async function refresh() {
    tick += 1;
    try {
      const health = await api.get("/api/health");
      if (!health.ready) {
        connection.waiting(health.waiting_for.join(" and "));
        return;
      }
      if (!drawn) {
        mapView.draw(await api.get("/api/map"));
        drawn = true;
      }
      const state = await api.get("/api/state");
      connection.ok(health);
      mapView.update(state);
      queuesView.update(state);
      const refreshView = views[current];
      if (refreshView && (current !== "metrics" || tick % METRICS_EVERY === 1)) await refreshView();
      document.body.dataset.refreshed = String(tick);
    } catch (error) {
      // api.send has already said what the page waits for.
    }
  }

  async function loop() {
    await refresh();
    setTimeout(loop, REFRESH_MS);
  }

  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => show(button.dataset.view));
  }
  ingestView.init();
  ordersView.init();
  loop();
})();
