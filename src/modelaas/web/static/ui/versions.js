// The Versions tab: a model's registered versions (newest first) with the active one marked,
// their metrics side by side, and Activate / Roll back (activating an older version), each
// confirmed first. Everything comes from GET <b>/v2/models/<m>/versions/.

import * as api from "./api.js";
import { versionsChart } from "./chart.js";
import { clear, formatDate, h } from "./dom.js";

export class VersionsTab {
  constructor(panel, model) {
    this.model = model;
    this.path = `/v2/models/${encodeURIComponent(model)}/versions/`;
    this.data = null;
    this.message = h("p", { class: "versions-message", id: "versions-message", role: "status", hidden: true });
    this.active = h("p", { class: "help", id: "versions-active" });
    this.body = h("div", { class: "versions-body", id: "versions-body" });
    const reload = h("button", { type: "button", class: "small", text: "Refresh", onclick: () => this.load() });
    panel.append(
      h("div", { class: "versions-head" }, h("h2", { class: "panel-title", text: `Versions of ${model}` }), reload),
      this.active,
      this.message,
      this.body,
    );
  }

  show() {
    this.load();
  }

  hide() {}

  destroy() {}

  say(text, kind = "") {
    this.message.textContent = text;
    this.message.className = `versions-message ${kind}`.trim();
    this.message.setAttribute("role", kind === "error" ? "alert" : "status");
    this.message.hidden = !text;
  }

  async load() {
    try {
      this.data = await api.json(this.path);
    } catch (err) {
      this.say(`The versions could not be listed: ${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`, "error");
      return;
    }
    this.render();
  }

  render() {
    const { versions = [], active = null, generation = 0 } = this.data;
    this.active.textContent =
      active === null
        ? "No version is active: the model serves what it was installed with."
        : `Version ${active} is active (generation ${generation}).`;
    clear(this.body);
    if (!versions.length) {
      this.body.append(
        h("p", { class: "help", text: "No version is registered yet: register one from a finished training or an archive." }),
      );
      return;
    }
    const rows = versions.map((v) => this.row(v, active));
    this.body.append(
      h(
        "div",
        { class: "versions-table-wrap" },
        h(
          "table",
          { class: "versions" },
          h("caption", { class: "visually-hidden", text: `Versions of ${this.model}, newest first` }),
          h("thead", {}, h("tr", {}, ["Version", "Created", "Source", "Description", ""].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, rows),
        ),
      ),
    );
    const chart = versionsChart([...versions].reverse());
    if (chart) this.body.append(chart);
  }

  row(v, active) {
    const isActive = v.version === active;
    const actions = h("div", { class: "version-actions" });
    if (!isActive) {
      const verb = active !== null && v.version < active ? "Roll back" : "Activate";
      actions.append(
        h("button", { type: "button", class: "small", dataset: { action: "activate" }, text: verb, onclick: () => this.confirm(actions, v, verb) }),
      );
    }
    return h(
      "tr",
      { class: "version", dataset: { version: String(v.version), active: String(isActive) } },
      h("th", { scope: "row" }, `${v.version}`, isActive ? h("span", { class: "badge active", text: "active" }) : null),
      h("td", {}, h("time", { datetime: v.created_at || "", text: formatDate(v.created_at) }), v.created_by ? ` by ${v.created_by}` : ""),
      h("td", {}, this.source(v.source || {})),
      h("td", { text: v.description || "" }),
      h("td", {}, actions),
    );
  }

  source(src) {
    if (src.kind === "job" && src.job) {
      const path = api.url(`/v2/models/${encodeURIComponent(this.model)}/train/${encodeURIComponent(src.job)}`);
      return h("span", {}, "training ", h("a", { href: path, class: "job-link", text: String(src.job).slice(0, 8) }));
    }
    if (src.kind === "archive") return `archive ${src.filename || ""}`.trim();
    if (src.kind === "mlflow") return h("span", {}, "MLflow ", h("code", { text: src.uri || "" }));
    return src.kind || "";
  }

  // An inline confirmation in the row: "Activate version 2? [Yes] [Cancel]".
  confirm(actions, v, verb) {
    clear(actions);
    const question = verb === "Roll back" ? `Roll back to version ${v.version}?` : `Activate version ${v.version}?`;
    const yes = h("button", { type: "button", class: "small primary", dataset: { action: "confirm" }, text: `Yes, ${verb.toLowerCase()}` });
    const no = h("button", { type: "button", class: "small", dataset: { action: "cancel" }, text: "Cancel", onclick: () => this.render() });
    yes.addEventListener("click", () => this.activate(v, yes, no));
    actions.append(h("p", { class: "version-confirm", text: question }), yes, no);
    yes.focus();
  }

  async activate(v, ...buttons) {
    for (const b of buttons) b.disabled = true;
    this.say(`Activating version ${v.version}…`);
    let response;
    try {
      response = await api.request(`${this.path}${v.version}/activate`, { method: "POST" });
    } catch (err) {
      this.say(err.message, "error");
      this.render();
      return;
    }
    if (!response.ok) {
      this.say(`Version ${v.version} could not be activated: ${await api.messageOf(response)} (HTTP ${response.status})`, "error");
      this.render();
      return;
    }
    const state = await response.json();
    await this.load();
    this.say(`Version ${state.active} is active (generation ${state.generation}); the servers switch to it now.`, "ok");
  }
}
