// Charts over the last minutes, from the metrics the app publishes to the local
// CloudWatch, and the declared alarms as CloudWatch would evaluate them.
"use strict";

const metricsView = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const SIZE = { width: 340, height: 120, pad: 24 };

  function chart(title, series, unit) {
    const values = series.flatMap((s) => s.points);
    const top = Math.max(1, ...values);
    const bottom = Math.min(0, ...values);
    const count = Math.max(...series.map((s) => s.points.length));
    const x = (i) => SIZE.pad + (i * (SIZE.width - 2 * SIZE.pad)) / Math.max(1, count - 1);
    const y = (v) => SIZE.height - SIZE.pad - ((v - bottom) * (SIZE.height - 2 * SIZE.pad)) / (top - bottom || 1);
    const root = document.createElementNS(SVG, "svg");
    root.setAttribute("width", SIZE.width);
    root.setAttribute("height", SIZE.height);
    root.setAttribute("role", "img");
    root.setAttribute("aria-label", `${title}: latest ${series.map((s) => `${s.name} ${s.points[s.points.length - 1]}`).join(", ")}`);
    const palette = ["#0b5cad", "#1d6b35", "#b00020", "#8a5300", "#5b3a9b"];
    series.forEach((s, n) => {
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("class", "line");
      line.setAttribute("style", `stroke: ${palette[n % palette.length]}`);
      line.setAttribute("points", s.points.map((v, i) => `${x(i)},${y(v)}`).join(" "));
      root.append(line);
    });
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 4);
    label.setAttribute("y", 14);
    label.textContent = `max ${top} ${unit}`;
    root.append(label);
    const legend = el("div", { class: "legend" }, series.map((s, n) =>
      el("span", { style: `color: ${palette[n % palette.length]}` }, `■ ${s.name}: ${s.points[s.points.length - 1]}`)));
    return el("figure", { class: "chart" }, el("figcaption", {}, title), root, legend);
  }

  async function refresh() {
    const [series, alarms] = await Promise.all([api.get("/api/metrics"), api.get("/api/alarms")]);
    let revenue = 0;
    const cumulative = series.revenue.map((v) => (revenue += v));
    document.getElementById("charts").replaceChildren(
      chart("Rows ingested per second", [{ name: "rows/s", points: series.rows_per_second }], "rows/s"),
      chart(`Orders per ${series.period} s, by status`, Object.entries(series.orders).map(([name, points]) => ({ name, points })), "orders"),
      chart("Revenue booked (cumulative over the window)", [{ name: "revenue", points: cumulative }], ""),
      chart(`Function errors per ${series.period} s`, [{ name: "errors", points: series.function_errors }], "errors"));
    fillRows("alarms", alarms.map((a) => el("tr", { "data-alarm": a.key },
      el("td", { title: a.description }, a.name),
      el("td", {}, el("span", { class: `state-${a.state}` }, a.state)),
      el("td", {}, a.metric),
      el("td", { class: "num" }, a.value ?? (a.reason || "")),
      el("td", { class: "num" }, `${a.comparison.replace("Threshold", "")} ${a.threshold}`))));
  }

  return { refresh };
})();
