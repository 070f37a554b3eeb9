// The training tab: the train form, the model's jobs with state and progress, and for each
// job its live log and metric charts (Server-Sent Events), cancel, delete and artefacts.

import * as api from "./api.js";
import { lineChart } from "./chart.js";
import { clear, formatBytes, formatDate, formatNumber, h } from "./dom.js";
import { OperationForm } from "./form.js";

const FINAL = new Set(["done", "error", "cancelled", "interrupted"]);
const MAX_STREAMS = 3; // browsers allow ~6 connections per host: keep some for fetches
const LIST_POLL_MS = 1500;
const JOB_POLL_MS = 1000;
const MAX_LOG_LINES = 5000;

export class TrainTab {
  constructor(panel, model, op, doc) {
    this.panel = panel;
    this.model = model;
    this.base = `/v2/models/${encodeURIComponent(model)}/train/`;
    this.views = new Map();
    this.streams = [];
    this.timer = null;
    this.visible = false;
    this.form = new OperationForm({
      op,
      doc,
      prefix: "train",
      submitLabel: "Start training",
      busyLabel: "Starting…",
      onSubmit: (args) => this.submit(args),
    });
    this.list = h("ol", { class: "jobs", id: "jobs", "aria-labelledby": "jobs-title" });
    this.empty = h("p", { class: "help", id: "jobs-empty", text: "No training yet." });
    this.announcer = h("p", { class: "visually-hidden", "aria-live": "polite", id: "train-announce" });
    this.refreshButton = h("button", { type: "button", class: "small", text: "Refresh", onclick: () => this.refresh() });
    panel.append(
      h("h2", { class: "panel-title", text: `Train ${model}` }),
      this.form.element,
      h("div", { class: "jobs-head" }, h("h2", { id: "jobs-title", text: "Jobs" }), this.refreshButton),
      this.empty,
      this.list,
      this.announcer,
    );
  }

  show() {
    this.visible = true;
    this.refresh();
  }

  hide() {
    this.visible = false;
    clearTimeout(this.timer);
  }

  destroy() {
    this.hide();
    for (const view of this.views.values()) view.stop();
    this.views.clear();
  }

  announce(text) {
    this.announcer.textContent = text;
  }

  path(uuid, rest = "") {
    return `${this.base}${encodeURIComponent(uuid)}${rest}`;
  }

  async submit({ data, query, form }) {
    const qs = query.toString();
    const response = await api.request(this.base + (qs ? `?${qs}` : ""), { method: "POST", body: data });
    if (response.status === 422) {
      form.showErrors(await response.json());
      return;
    }
    if (!response.ok) {
      form.showMessage(await api.messageOf(response));
      return;
    }
    const record = await response.json();
    form.showMessage(`Training ${record.uuid.slice(0, 8)} queued.`, "ok");
    const view = this.upsert(record);
    view.open();
    this.schedule();
  }

  async refresh() {
    clearTimeout(this.timer);
    let records;
    try {
      records = await api.json(this.base);
    } catch (err) {
      this.empty.hidden = false;
      this.empty.textContent = `The jobs could not be listed: ${err.message}`;
      this.schedule(5000);
      return;
    }
    const seen = new Set();
    for (const record of records) {
      seen.add(record.uuid);
      this.upsert(record);
    }
    for (const [uuid, view] of this.views) {
      if (!seen.has(uuid)) this.remove(uuid, view);
    }
    this.empty.hidden = this.views.size > 0;
    this.empty.textContent = "No training yet.";
    this.schedule();
  }

  schedule(delay = LIST_POLL_MS) {
    clearTimeout(this.timer);
    const active = Array.from(this.views.values()).some((v) => !FINAL.has(v.record.status));
    if (this.visible && (active || delay > LIST_POLL_MS)) this.timer = setTimeout(() => this.refresh(), delay);
  }

  upsert(record) {
    let view = this.views.get(record.uuid);
    if (view) {
      view.update(record);
    } else {
      view = new JobView(this, record);
      this.views.set(record.uuid, view);
      this.list.prepend(view.el);
      this.empty.hidden = true;
    }
    return view;
  }

  remove(uuid, view) {
    view.stop();
    view.el.remove();
    this.views.delete(uuid);
    this.empty.hidden = this.views.size > 0;
  }

  // Keep at most MAX_STREAMS event streams open; the oldest one is paused (it resumes when reopened).
  claimStream(view) {
    this.streams = this.streams.filter((v) => v.es && v !== view);
    this.streams.push(view);
    while (this.streams.length > MAX_STREAMS) this.streams.shift().closeStream();
  }
}

class JobView {
  constructor(tab, record) {
    this.tab = tab;
    this.record = record;
    this.uuid = record.uuid;
    this.short = record.uuid.slice(0, 8);
    this.lastId = 0;
    this.loaded = false; // history (events) read at least once
    this.metrics = new Map(); // name -> [numbers]
    this.logLines = 0;
    this.logOffset = 0;
    this.es = null;
    this.pollTimer = null;
    this.filesLoaded = false;
    this.redrawQueued = false;
    this.build();
    this.update(record);
  }

  build() {
    const id = `job-${this.uuid}`;
    this.status = h("span", { class: "status" });
    this.fill = h("div", { class: "progress-fill" });
    this.bar = h(
      "div",
      { class: "progress", role: "progressbar", "aria-label": `Progress of training ${this.short}`, "aria-valuemin": "0", "aria-valuemax": "100" },
      this.fill,
    );
    this.pct = h("span", { class: "pct", "aria-hidden": "true" });
    this.latest = h("span", { class: "latest-metrics" });
    this.cancelButton = h("button", {
      type: "button",
      class: "small danger",
      text: "Cancel",
      "aria-label": `Cancel training ${this.short}`,
      onclick: () => this.cancel(),
    });
    this.deleteButton = h("button", {
      type: "button",
      class: "small",
      text: "Delete",
      "aria-label": `Delete training ${this.short}`,
      onclick: () => this.remove(),
    });
    this.message = h("p", { class: "job-message", hidden: true });
    this.argsEl = h("pre", { class: "kv" });
    this.resultEl = h("div", { class: "job-result" });
    this.charts = h("div", { class: "charts", "aria-label": `Metrics of training ${this.short}`, role: "group" });
    this.log = h("pre", { class: "log", tabindex: "0", "aria-label": `Log of training ${this.short}`, id: `${id}-log` });
    this.files = h("ul", { class: "files", "aria-label": `Files of training ${this.short}` });
    this.filesNote = h("p", { class: "help", text: "Files are listed when the training ends." });
    this.details = h(
      "details",
      { class: "job-details" },
      h("summary", {}, "Details, log and metrics"),
      h("div", { class: "job-grid" },
        h("section", { class: "job-section" }, h("h3", { text: "Arguments" }), this.argsEl),
        h("section", { class: "job-section" }, h("h3", { text: "Result" }), this.resultEl),
      ),
      h("section", { class: "job-section" }, h("h3", { text: "Metrics" }), this.charts),
      h("section", { class: "job-section" }, h("h3", { text: "Log" }), this.log),
      h("section", { class: "job-section" }, h("h3", { text: "Files" }), this.filesNote, this.files),
    );
    this.details.addEventListener("toggle", () => {
      if (this.details.open) this.follow();
    });
    this.when = h("time", { datetime: this.record.created_at || "" });
    this.el = h(
      "li",
      { class: "job", id, dataset: { job: this.uuid } },
      h(
        "div",
        { class: "job-head" },
        h("div", { class: "job-title" }, this.status, h("code", { title: this.uuid, text: this.short }), this.when),
        h("div", { class: "job-progress" }, this.bar, this.pct),
        h("div", { class: "job-actions" }, this.latest, this.cancelButton, this.deleteButton),
      ),
      this.message,
      this.details,
    );
  }

  get active() {
    return !FINAL.has(this.record.status);
  }

  update(record) {
    const before = this.record.status;
    // A list fetched before the job's last event may be older than what the events said:
    // a final state is never left, and progress does not go back while the job runs.
    if (record.status && FINAL.has(before) && !FINAL.has(record.status)) return;
    if (
      record.status === before &&
      typeof record.progress === "number" &&
      typeof this.record.progress === "number" &&
      record.progress < this.record.progress
    ) {
      record = { ...record, progress: this.record.progress, metrics: this.record.metrics };
    }
    this.record = { ...this.record, ...record };
    const r = this.record;
    this.el.dataset.status = r.status;
    this.status.className = `status status-${r.status}`;
    this.status.textContent = r.status;
    this.when.textContent = formatDate(r.created_at);
    this.when.setAttribute("datetime", r.created_at || "");
    this.setProgress();
    this.cancelButton.hidden = !this.active;
    this.deleteButton.hidden = this.active;
    if (r.cancel_requested && this.active) {
      this.cancelButton.disabled = true;
      this.cancelButton.textContent = "Cancelling…";
    }
    this.message.hidden = !r.message;
    this.message.textContent = r.message || "";
    this.argsEl.textContent = JSON.stringify(r.args || {}, null, 2);
    this.showLatest(r.metrics || {});
    this.showResult();
    if (before !== r.status && FINAL.has(r.status) && !FINAL.has(before)) {
      this.tab.announce(`Training ${this.short} is ${r.status}.`);
    }
    if (FINAL.has(r.status) && this.details.open && !this.filesLoaded) this.loadFiles();
  }

  setProgress() {
    const r = this.record;
    let value = typeof r.progress === "number" ? r.progress : null;
    if (r.status === "done") value = 1;
    if (value === null && r.status === "queued") value = 0;
    if (value === null && !this.active) value = 0;
    this.bar.classList.toggle("indeterminate", value === null);
    this.bar.dataset.status = r.status;
    if (value === null) {
      this.bar.removeAttribute("aria-valuenow");
      this.bar.setAttribute("aria-valuetext", r.status);
      this.fill.style.width = "";
      this.pct.textContent = "…";
    } else {
      const pct = Math.round(Math.max(0, Math.min(1, value)) * 100);
      this.bar.setAttribute("aria-valuenow", String(pct));
      this.bar.setAttribute("aria-valuetext", `${pct}% (${r.status})`);
      this.fill.style.width = `${pct}%`;
      this.pct.textContent = `${pct}%`;
    }
  }

  showLatest(metrics) {
    const parts = Object.entries(metrics)
      .filter(([, v]) => typeof v === "number")
      .slice(0, 3)
      .map(([k, v]) => `${k} ${formatNumber(v)}`);
    this.latest.textContent = parts.join(" · ");
  }

  showResult() {
    const r = this.record;
    clear(this.resultEl);
    if (!r.result) {
      this.resultEl.append(h("p", { class: "help", text: this.active ? "Not finished yet." : "No result." }));
      return;
    }
    const rows = [];
    if (r.result.duration) rows.push(h("p", {}, h("strong", { text: "Duration: " }), r.result.duration));
    if (r.result.finish_date) rows.push(h("p", {}, h("strong", { text: "Finished: " }), formatDate(r.finished_at) || r.result.finish_date));
    if (r.result.output !== undefined && r.result.output !== null) {
      rows.push(h("pre", { class: "kv", text: JSON.stringify(r.result.output, null, 2) }));
    }
    this.resultEl.append(...rows);
  }

  open() {
    this.details.open = true;
    this.follow();
  }

  // Read the job's history and follow it live: events when possible, polling otherwise.
  follow() {
    if (this.es || this.pollTimer) return;
    if (this.loaded && !this.active) {
      if (!this.filesLoaded) this.loadFiles();
      return;
    }
    if (this.noEvents) {
      this.poll();
      return;
    }
    this.openStream();
  }

  openStream() {
    const query = this.lastId ? `?after=${this.lastId}` : "";
    let es;
    try {
      es = api.events(this.tab.path(this.uuid, `/events${query}`));
    } catch {
      this.noEvents = true;
      this.poll();
      return;
    }
    this.es = es;
    this.tab.claimStream(this);
    let received = false;
    for (const type of ["state", "progress", "log"]) {
      es.addEventListener(type, (event) => {
        received = true;
        this.onEvent(type, event);
      });
    }
    es.addEventListener("error", () => {
      if (es.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
      this.es = null;
      if (!received) {
        // refused (e.g. a token the events route does not take): poll instead
        this.noEvents = true;
        this.poll();
      }
    });
  }

  closeStream() {
    if (this.es) this.es.close();
    this.es = null;
  }

  stop() {
    this.closeStream();
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  onEvent(type, event) {
    const id = Number(event.lastEventId || 0);
    if (id && id <= this.lastId) return;
    if (id) this.lastId = id;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (type === "log") {
      this.appendLog([data.line]);
    } else if (type === "progress") {
      this.addSample(data.metrics || {});
      this.update({ progress: data.progress ?? this.record.progress, metrics: { ...(this.record.metrics || {}), ...(data.metrics || {}) } });
    } else if (type === "state") {
      const patch = { status: data.status };
      if (data.message !== undefined) patch.message = data.message;
      this.update(patch);
      if (FINAL.has(data.status)) {
        this.loaded = true;
        this.closeStream();
        this.reload();
      }
    }
  }

  async reload() {
    try {
      this.update(await api.json(this.tab.path(this.uuid)));
    } catch {
      /* the list refresh will tell */
    }
    if (this.details.open && !this.active && !this.filesLoaded) this.loadFiles();
  }

  // The fallback without events: the record and the log, every second, until the job ends.
  async poll() {
    clearTimeout(this.pollTimer);
    this.pollTimer = -1;
    try {
      const record = await api.json(this.tab.path(this.uuid));
      const sample = JSON.stringify([record.progress, record.metrics]);
      if (record.metrics && Object.keys(record.metrics).length && sample !== this.lastSample) {
        this.addSample(record.metrics);
      }
      this.lastSample = sample;
      this.update(record);
      const response = await api.request(this.tab.path(this.uuid, `/logs?offset=${this.logOffset}`));
      if (response.ok) {
        const text = await response.text();
        const next = Number(response.headers.get("X-Next-Offset"));
        if (text) this.appendLog(text.replace(/\n$/, "").split("\n"));
        if (Number.isFinite(next)) this.logOffset = next;
      }
    } catch {
      /* try again below */
    }
    if (this.active) {
      this.pollTimer = setTimeout(() => this.poll(), JOB_POLL_MS);
    } else {
      this.pollTimer = null;
      this.loaded = true;
      if (this.details.open && !this.filesLoaded) this.loadFiles();
    }
  }

  appendLog(lines) {
    const atBottom = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    this.log.append(lines.map((l) => l + "\n").join(""));
    this.logLines += lines.length;
    while (this.logLines > MAX_LOG_LINES && this.log.firstChild) {
      this.log.firstChild.remove();
      this.logLines = this.log.textContent.split("\n").length - 1;
    }
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  addSample(metrics) {
    for (const [name, value] of Object.entries(metrics)) {
      if (typeof value !== "number" || !Number.isFinite(value)) continue;
      if (!this.metrics.has(name)) this.metrics.set(name, []);
      this.metrics.get(name).push(value);
    }
    if (!this.redrawQueued) {
      this.redrawQueued = true;
      requestAnimationFrame(() => {
        this.redrawQueued = false;
        this.drawCharts();
      });
    }
  }

  drawCharts() {
    clear(this.charts);
    for (const [name, values] of this.metrics) {
      if (values.length) this.charts.append(lineChart(name, values));
    }
  }

  async loadFiles() {
    this.filesLoaded = true;
    clear(this.files);
    let listing;
    try {
      listing = await api.json(this.tab.path(this.uuid, "/files"));
    } catch (err) {
      this.filesNote.textContent = `The files could not be listed: ${err.message}`;
      this.filesLoaded = false;
      return;
    }
    this.filesNote.textContent = listing.length ? "" : "The training wrote no files.";
    this.filesNote.hidden = listing.length > 0;
    for (const file of listing) {
      const name = file.path.split("/").pop();
      const link = h("a", { href: api.url(file.href), download: name, text: file.path });
      link.addEventListener("click", (event) => {
        if (!api.hasToken()) return;
        event.preventDefault();
        api.download(file.href, name).catch((err) => this.tab.announce(`Download failed: ${err.message}`));
      });
      this.files.append(h("li", {}, link, h("span", { class: "size", text: ` ${formatBytes(file.size)}` })));
    }
  }

  async cancel() {
    this.cancelButton.disabled = true;
    this.cancelButton.textContent = "Cancelling…";
    try {
      const response = await api.request(this.tab.path(this.uuid), { method: "DELETE" });
      if (!response.ok) throw new Error(await api.messageOf(response));
      this.update(await response.json());
    } catch (err) {
      this.message.hidden = false;
      this.message.textContent = `Could not cancel: ${err.message}`;
    } finally {
      this.cancelButton.disabled = false;
      this.cancelButton.textContent = "Cancel";
    }
    this.tab.schedule();
  }

  async remove() {
    if (!this.confirming) {
      this.confirming = true;
      this.deleteButton.textContent = "Confirm delete";
      this.deleteButton.classList.add("danger");
      setTimeout(() => {
        this.confirming = false;
        this.deleteButton.textContent = "Delete";
        this.deleteButton.classList.remove("danger");
      }, 4000);
      return;
    }
    this.deleteButton.disabled = true;
    try {
      const response = await api.request(this.tab.path(this.uuid), { method: "DELETE" });
      if (!response.ok && response.status !== 404) throw new Error(await api.messageOf(response));
      this.tab.remove(this.uuid, this);
      this.tab.announce(`Training ${this.short} deleted.`);
    } catch (err) {
      this.message.hidden = false;
      this.message.textContent = `Could not delete: ${err.message}`;
      this.deleteButton.disabled = false;
    }
  }
}
