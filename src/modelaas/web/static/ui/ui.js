// The modelaas web UI: pick a model, see its metadata, predict with a generated form,
// train and follow jobs. Everything comes from the API (models, OpenAPI document, jobs).

import * as api from "./api.js";
import { renderAnswer } from "./answer.js";
import { clear, h } from "./dom.js";
import { OperationForm } from "./form.js";
import { TrainTab } from "./train.js";
import { VersionsTab } from "./versions.js";

const $ = (id) => document.getElementById(id);

const app = {
  models: [],
  doc: null,
  model: null,
  tab: "predict",
  tabs: {},
  train: null,
  versions: null,
  predictForm: null,
  objectUrls: [],
};

const WHY = {
  400: "The request was refused",
  403: "Not allowed",
  404: "Not found",
  406: "The answer type is not available",
  413: "Too large",
  429: "Too many trainings are waiting",
  500: "The model failed",
  501: "Not implemented by the model",
  503: "The server is busy",
  504: "The prediction took too long",
};

export function plainError(status, message) {
  const why = WHY[status] || (status >= 500 ? "The server failed" : "The request failed");
  return `${why}: ${message} (HTTP ${status})`;
}

function setStatus(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = `status-line ${kind}`.trim();
  el.hidden = !text;
}

function operation(path, method) {
  const item = app.doc && app.doc.paths && app.doc.paths[`${api.base}${path}`];
  return item ? item[method] : undefined;
}

// ------------------------------------------------------------------ start-up

function start() {
  wireToken();
  wireTabs();
  $("model-select").addEventListener("change", (event) => {
    location.hash = `#${encodeURIComponent(event.target.value)}/${app.tab}`;
  });
  window.addEventListener("hashchange", route);
  load();
}

async function load() {
  setStatus("Loading the models…");
  try {
    const [models, doc] = await Promise.all([api.json("/v2/models/"), api.json("/openapi.json")]);
    app.models = models.models || [];
    app.doc = doc;
  } catch (err) {
    setStatus(`The models could not be loaded: ${err.message}`, "error");
    $("status").append(" ", h("button", { type: "button", class: "small", text: "Try again", onclick: load }));
    return;
  }
  if (!app.models.length) {
    setStatus("This server serves no model.", "error");
    return;
  }
  const select = $("model-select");
  clear(select);
  for (const m of app.models) select.append(h("option", { value: m.name, text: m.name }));
  $("model-pick").hidden = false;
  setStatus("");
  route();
}

function parseHash() {
  const [name, tab] = location.hash.replace(/^#/, "").split("/");
  try {
    return [decodeURIComponent(name || ""), tab || ""];
  } catch {
    return ["", ""];
  }
}

function route() {
  if (!app.models.length) return;
  const [name, tab] = parseHash();
  const model = app.models.find((m) => m.name === name) || app.models[0];
  if (model !== app.model) showModel(model);
  const available = Object.keys(app.tabs).filter((t) => app.tabs[t]);
  selectTab(available.includes(tab) ? tab : available[0], false);
}

// ------------------------------------------------------------------ one model

function showModel(model) {
  if (app.train) app.train.destroy();
  app.train = null;
  if (app.versions) app.versions.destroy();
  app.versions = null;
  app.model = model;
  $("model-select").value = model.name;
  document.title = `${model.name} - modelaas`;
  renderAbout(model);

  const predictOp = operation(`/v2/models/${model.name}/predict/`, "post");
  const trainOp = operation(`/v2/models/${model.name}/train/`, "post");
  const versionsOp =
    operation(`/v2/models/${model.name}/versions/`, "get") || operation("/v2/models/{model}/versions/", "get");
  app.tabs = { predict: Boolean(predictOp), train: Boolean(trainOp), versions: Boolean(versionsOp) };
  $("tab-predict").hidden = !predictOp;
  $("tab-train").hidden = !trainOp;
  $("tab-versions").hidden = !versionsOp;
  $("tabs").hidden = !predictOp && !trainOp && !versionsOp;
  $("no-methods").hidden = Boolean(predictOp || trainOp);

  const predictPanel = clear($("panel-predict"));
  if (predictOp) buildPredict(predictPanel, model, predictOp);
  const trainPanel = clear($("panel-train"));
  if (trainOp) app.train = new TrainTab(trainPanel, model.name, trainOp, app.doc);
  const versionsPanel = clear($("panel-versions"));
  if (versionsOp) app.versions = new VersionsTab(versionsPanel, model.name);
}

function renderAbout(model) {
  const about = clear($("about"));
  const skip = new Set(["id", "name", "links", "summary", "description"]);
  about.append(
    h("h2", { id: "model-title" }, model.name, model.demo === true ? h("span", { class: "badge", text: "demo" }) : null),
  );
  if (model.summary) about.append(h("p", { class: "summary", text: String(model.summary) }));
  if (model.description && model.description !== model.summary) {
    about.append(h("p", { class: "description", text: String(model.description) }));
  }
  const rows = Object.entries(model).filter(([k]) => !skip.has(k));
  if (rows.length) {
    const dl = h("dl", { class: "metadata" });
    for (const [key, value] of rows) dl.append(h("dt", { text: key }), h("dd", {}, metaValue(value)));
    about.append(h("details", { class: "meta-details" }, h("summary", {}, "Metadata"), dl));
  }
}

function metaValue(value) {
  if (typeof value === "string") {
    if (/^https?:\/\/\S+$/.test(value)) return h("a", { href: value, rel: "noopener noreferrer", target: "_blank", text: value });
    return value;
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  return h("pre", { class: "kv", text: JSON.stringify(value, null, 2) });
}

// ------------------------------------------------------------------ predict

function buildPredict(panel, model, op) {
  const statusLine = h("p", { class: "answer-status", id: "answer-status", role: "status" });
  const body = h("div", { class: "answer", id: "answer" });
  const result = h(
    "section",
    { class: "result", id: "predict-result", "aria-labelledby": "answer-title", hidden: true },
    h("h2", { id: "answer-title", text: "Answer" }),
    statusLine,
    body,
  );
  const placeholder = h("p", { class: "answer-placeholder", text: "The answer will appear here." });
  const show = (visible) => {
    result.hidden = !visible;
    placeholder.hidden = visible;
  };
  const path = `/v2/models/${encodeURIComponent(model.name)}/predict/`;
  const form = new OperationForm({
    op,
    doc: app.doc,
    prefix: "predict",
    submitLabel: "Predict",
    busyLabel: "Predicting…",
    extraQuery: ["accept"],
    onSubmit: async ({ data, query, form: f }) => {
      for (const u of app.objectUrls) URL.revokeObjectURL(u);
      app.objectUrls = [];
      clear(body);
      statusLine.textContent = "";
      show(false);
      const qs = query.toString();
      const started = performance.now();
      const response = await api.request(path + (qs ? `?${qs}` : ""), { method: "POST", body: data });
      const ms = Math.round(performance.now() - started);
      if (response.status === 422) {
        let errors = {};
        try {
          errors = await response.json();
        } catch {
          /* an empty map: the general message says it */
        }
        f.showErrors(errors);
        return;
      }
      if (!response.ok) {
        f.showMessage(plainError(response.status, await api.messageOf(response)));
        return;
      }
      const summary = await renderAnswer(body, response, { model: model.name, objectUrls: app.objectUrls });
      statusLine.textContent = `${response.status} ${response.statusText || "OK"} · ${ms} ms · ${summary}`;
      show(true);
      const box = result.getBoundingClientRect();
      if (box.top > window.innerHeight || box.bottom < 0) result.scrollIntoView({ block: "start" });
      f.showMessage("Done.", "ok");
    },
  });
  app.predictForm = form;
  panel.append(
    h("h2", { class: "panel-title", text: `Predict with ${model.name}` }),
    h("div", { class: "predict-layout" }, form.element, h("div", { class: "answer-column" }, placeholder, result)),
  );
}

// ------------------------------------------------------------------ tabs

function wireTabs() {
  const tabs = () => Array.from(document.querySelectorAll('[role="tab"]')).filter((t) => !t.hidden);
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => selectTab(tab.dataset.tab, true));
    tab.addEventListener("keydown", (event) => {
      const list = tabs();
      const i = list.indexOf(tab);
      let next = null;
      if (event.key === "ArrowRight") next = list[(i + 1) % list.length];
      if (event.key === "ArrowLeft") next = list[(i - 1 + list.length) % list.length];
      if (event.key === "Home") next = list[0];
      if (event.key === "End") next = list[list.length - 1];
      if (next) {
        event.preventDefault();
        selectTab(next.dataset.tab, true);
        next.focus();
      }
    });
  }
}

function selectTab(name, updateHash) {
  if (!name) return;
  app.tab = name;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !on;
  }
  if (app.train) {
    if (name === "train") app.train.show();
    else app.train.hide();
  }
  if (app.versions) {
    if (name === "versions") app.versions.show();
    else app.versions.hide();
  }
  if (updateHash && app.model) {
    const hash = `#${encodeURIComponent(app.model.name)}/${name}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }
}

// ------------------------------------------------------------------ token

function wireToken() {
  const forget = $("forget-token");
  const show = (has) => (forget.hidden = !has);
  show(api.hasToken());
  api.onTokenChange(show);
  forget.addEventListener("click", () => {
    api.setToken("");
    setStatus("The access token is forgotten.");
  });
  const dialog = $("token-dialog");
  $("token-cancel").addEventListener("click", () => dialog.close("cancel"));
}

start();
