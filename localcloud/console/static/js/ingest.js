// Upload a CSV through the app's presigned upload, and watch its job fill its bar.
"use strict";

const ingestView = (() => {
  const FINAL = new Set(["COMPLETED", "COMPLETED_WITH_REJECTS", "FAILED", "EMPTY"]);

  async function upload(event) {
    event.preventDefault();
    const file = document.getElementById("upload-file").files[0];
    if (!file) return;
    report("upload-result", `uploading ${file.name}…`);
    try {
      const answer = await api.send("POST", `/api/upload?filename=${encodeURIComponent(file.name)}`, await file.arrayBuffer(), "text/csv");
      if (answer.status !== 201) {
        report("upload-result", `the API refused the upload: ${JSON.stringify(answer.error)}`, true);
        return;
      }
      report("upload-result", `uploaded ${file.name}: job ${shortId(answer.ingest_ids[0])}`);
      await refresh();
    } catch (error) {
      report("upload-result", `upload failed: ${error.message}`, true);
    }
  }

  function progress(job) {
    const total = job.rows_accepted || 0;
    const done = job.rows_written || 0;
    const value = FINAL.has(job.state) ? 1 : total ? done / total : 0;
    return el("progress", { class: "progress", max: 1, value, "aria-label": `job ${shortId(job.ingest_id)} progress` });
  }

  function row(job) {
    const rejects = job.rejects_key
      ? el("button", { type: "button", onclick: () => showRejects(job.ingest_id) }, "open")
      : "";
    return el("tr", { "data-job": job.ingest_id, "data-state": job.state },
      el("td", {}, shortId(job.ingest_id)),
      el("td", {}, (job.key || "").split("/").pop()),
      el("td", { class: "job-state" }, job.state),
      el("td", {}, progress(job)),
      el("td", { class: "num" }, job.rows_accepted ?? ""),
      el("td", { class: "num" }, job.rows_rejected ?? ""),
      el("td", { class: "num" }, job.rows_written ?? ""),
      el("td", {}, rejects));
  }

  async function showRejects(ingestId) {
    const report = await api.get(`/api/jobs/${ingestId}/rejects`);
    const head = el("tr", {}, report.header.map((name) => el("th", {}, name)));
    const body = report.rows.map((cells) => el("tr", {}, cells.map((cell) => el("td", {}, cell))));
    document.getElementById("rejects").replaceChildren(
      el("h3", {}, `Rejects of job ${shortId(ingestId)}${report.truncated ? " (first rows)" : ""}`),
      el("table", { id: "rejects-table" }, el("thead", {}, head), el("tbody", {}, body)));
  }

  async function refresh() {
    const page = await api.get("/api/jobs");
    fillRows("jobs", (page.items || []).map(row));
  }

  function init() {
    document.getElementById("upload-form").addEventListener("submit", upload);
  }

  return { init, refresh };
})();
