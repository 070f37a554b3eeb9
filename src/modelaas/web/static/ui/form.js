// A form generated from an OpenAPI operation: its request body's properties and its
// query parameters (e.g. `accept`). Types, enums, ranges, defaults, descriptions and
// required marks come from the JSON schema; files are inputs of type file with a preview.

import { append, clear, formatBytes, h } from "./dom.js";

const MEDIA_ORDER = ["multipart/form-data", "application/x-www-form-urlencoded", "application/json"];

// Follow a local "$ref" and pick the useful branch of anyOf/oneOf/type lists.
export function resolve(schema, doc, depth = 0) {
  if (!schema || typeof schema !== "object" || depth > 20) return schema || {};
  if (typeof schema.$ref === "string" && schema.$ref.startsWith("#/")) {
    let target = doc;
    for (const part of schema.$ref.slice(2).split("/")) {
      target = target ? target[part.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
    }
    const { $ref, ...rest } = schema;
    return resolve({ ...(target || {}), ...rest }, doc, depth + 1);
  }
  for (const key of ["anyOf", "oneOf"]) {
    if (Array.isArray(schema[key])) {
      const branches = schema[key].map((s) => resolve(s, doc, depth + 1));
      const real = branches.filter((s) => s.type !== "null");
      if (real.length === 1) {
        const { [key]: _, ...rest } = schema;
        return { ...real[0], ...rest, nullable: real.length !== branches.length };
      }
    }
  }
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t) => t !== "null");
    return { ...schema, type: types.length === 1 ? types[0] : undefined, nullable: types.length !== schema.type.length };
  }
  return schema;
}

// The body schema of an operation (properties, required, encoding).
export function bodyOf(op, doc) {
  const content = (op && op.requestBody && op.requestBody.content) || {};
  const media = MEDIA_ORDER.find((m) => content[m]) || Object.keys(content)[0];
  if (!media) return { properties: {}, required: [], encoding: {} };
  const schema = resolve(content[media].schema, doc);
  return {
    properties: schema.properties || {},
    required: schema.required || [],
    encoding: content[media].encoding || {},
  };
}

function isBinary(s) {
  return s && s.type === "string" && (s.format === "binary" || s.contentEncoding === "base64" || s.contentMediaType);
}

function kindOf(schema) {
  if (isBinary(schema)) return "file";
  if (schema.type === "array") {
    const items = schema.items || {};
    if (items.type === "array") return "tensor"; // nested arrays: a tensor of two or more axes, typed as JSON
    if (isBinary(items)) return "files";
    if (Array.isArray(items.enum)) return "multichoice";
    return "list";
  }
  if (Array.isArray(schema.enum)) return "choice";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.type === "object") return "object";
  if (schema.type === "string" && schema.format === "date") return "date";
  if (schema.type === "string" && schema.format === "date-time") return "datetime";
  return "text";
}

function safeId(text) {
  return String(text).replace(/[^A-Za-z0-9_-]/g, "_");
}

// Words for a schema's constraints: "Whole number from 1 to 100."
export function hintOf(schema, kind) {
  const parts = [];
  const lo = schema.minimum ?? schema.exclusiveMinimum;
  const hi = schema.maximum ?? schema.exclusiveMaximum;
  const loWord = schema.exclusiveMinimum !== undefined ? "more than" : "at least";
  const hiWord = schema.exclusiveMaximum !== undefined ? "less than" : "at most";
  if (kind === "number") {
    const what = schema.type === "integer" ? "Whole number" : "Number";
    if (lo !== undefined && hi !== undefined && schema.exclusiveMinimum === undefined && schema.exclusiveMaximum === undefined) {
      parts.push(`${what} from ${lo} to ${hi}.`);
    } else if (lo !== undefined && hi !== undefined) {
      parts.push(`${what}, ${loWord} ${lo} and ${hiWord} ${hi}.`);
    } else if (lo !== undefined) {
      parts.push(`${what}, ${loWord} ${lo}.`);
    } else if (hi !== undefined) {
      parts.push(`${what}, ${hiWord} ${hi}.`);
    } else {
      parts.push(`${what}.`);
    }
  }
  if (kind === "list" || kind === "multichoice" || kind === "files") {
    const items = schema.items || {};
    const itemWord = { integer: "whole numbers", number: "numbers", boolean: "true/false values", string: "texts" }[items.type];
    let text = kind === "files" ? "One or more files" : itemWord ? `A list of ${itemWord}` : "A list";
    if (schema.minItems !== undefined && schema.maxItems !== undefined) text += `, ${schema.minItems} to ${schema.maxItems} items`;
    else if (schema.minItems !== undefined) text += `, at least ${schema.minItems} items`;
    else if (schema.maxItems !== undefined) text += `, at most ${schema.maxItems} items`;
    parts.push(text + ".");
  }
  if (kind === "text") {
    if (schema.minLength !== undefined && schema.maxLength !== undefined) parts.push(`${schema.minLength} to ${schema.maxLength} characters.`);
    else if (schema.minLength !== undefined) parts.push(`At least ${schema.minLength} characters.`);
    else if (schema.maxLength !== undefined) parts.push(`At most ${schema.maxLength} characters.`);
  }
  if (kind === "object") parts.push("A JSON object.");
  if (kind === "tensor") parts.push("Nested JSON arrays, one level per axis, like [[1, 2], [3, 4]].");
  if (schema.default !== undefined && schema.default !== null && kind !== "boolean" && kind !== "choice") {
    const d = schema.default;
    const shown = typeof d === "string" ? d : Array.isArray(d) ? d.map((v) => JSON.stringify(v)).join(", ") : JSON.stringify(d);
    if (shown !== "") parts.push(`Default: ${shown}.`);
  }
  return parts.join(" ");
}

function mediaOf(name, schema, encoding) {
  const enc = encoding[name] && encoding[name].contentType;
  const items = schema.items || {};
  const declared = enc || schema.contentMediaType || items.contentMediaType || "";
  return declared
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m && m !== "*/*" && m !== "application/octet-stream");
}

// The kind of inline preview for a file: from its own type, else from what the argument declares.
export function previewKind(type, declared) {
  for (const media of [type, ...declared]) {
    const major = (media || "").split("/")[0];
    if (["image", "audio", "video"].includes(major)) return major;
  }
  return "";
}

function numberOrText(text, type) {
  if ((type === "number" || type === "integer") && text.trim() !== "" && Number.isFinite(Number(text))) return Number(text);
  if (type === "boolean" && (text === "true" || text === "false")) return text === "true";
  return text;
}

function messagesOf(value, prefix = "") {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap((v) => messagesOf(v, prefix));
  if (typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => messagesOf(v, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix ? `${prefix}: ${value}` : String(value)];
}

// One field of the form.
class Field {
  constructor(form, name, schema, { required, encoding, where }) {
    this.form = form;
    this.name = name;
    this.schema = schema;
    this.kind = kindOf(schema);
    this.required = required;
    this.where = where; // "body" or "query"
    this.id = `${form.prefix}-f-${safeId(name)}`;
    this.media = mediaOf(name, schema, encoding);
    this.itemErrors = [];
    this.objectUrls = [];
    this.build();
  }

  describedBy(extra) {
    return [this.helpId, `${this.id}-error`, extra].filter(Boolean).join(" ");
  }

  labelEl(forId) {
    return h(
      forId ? "label" : "span",
      { for: forId, class: "field-label", id: `${this.id}-label` },
      h("span", { class: "field-name", text: this.name }),
      this.required ? h("span", { class: "req", text: "required" }) : null,
    );
  }

  helpEl() {
    const description = this.schema.description || "";
    const hint = hintOf(this.schema, this.kind);
    if (!description && !hint) return null;
    this.helpId = `${this.id}-help`;
    return h(
      "p",
      { class: "help", id: this.helpId },
      description,
      description && hint ? " " : "",
      hint ? h("span", { class: "hint", text: hint }) : null,
    );
  }

  build() {
    const s = this.schema;
    const help = this.helpEl();
    this.error = h("p", { class: "field-error", id: `${this.id}-error`, hidden: true });
    const common = {
      id: this.id,
      name: this.name,
      "aria-describedby": this.describedBy(),
      "aria-required": this.required ? "true" : null,
    };
    let control;
    const wrap = (inner, cls = "") =>
      h("div", { class: `field field-${this.kind} ${cls}`.trim(), dataset: { field: this.name, kind: this.kind } }, inner);

    switch (this.kind) {
      case "file":
      case "files": {
        this.input = h("input", {
          ...common,
          type: "file",
          multiple: this.kind === "files",
          accept: this.media.length ? this.media.join(",") : null,
          onchange: () => this.showPreview(),
        });
        this.preview = h("div", { class: "preview", "aria-live": "polite" });
        control = [this.labelEl(this.id), help, this.input, this.preview];
        break;
      }
      case "choice": {
        const options = [];
        if (!this.required && (s.default === undefined || s.default === null)) options.push(h("option", { value: "", text: "(not set)" }));
        for (const value of s.enum) {
          options.push(h("option", { value: String(value), text: String(value), selected: s.default !== undefined && value === s.default }));
        }
        this.input = h("select", common, options);
        control = [this.labelEl(this.id), help, this.input];
        break;
      }
      case "boolean": {
        if (typeof s.default === "boolean" || this.required) {
          this.input = h("input", { ...common, type: "checkbox", checked: s.default === true, "aria-required": null });
          control = [h("div", { class: "check" }, this.input, this.labelEl(this.id)), help];
        } else {
          this.input = h(
            "select",
            common,
            h("option", { value: "", text: "(not set)" }),
            h("option", { value: "true", text: "true" }),
            h("option", { value: "false", text: "false" }),
          );
          control = [this.labelEl(this.id), help, this.input];
        }
        break;
      }
      case "number": {
        const lo = s.minimum ?? s.exclusiveMinimum;
        const hi = s.maximum ?? s.exclusiveMaximum;
        this.input = h("input", {
          ...common,
          type: "number",
          inputmode: s.type === "integer" ? "numeric" : "decimal",
          step: s.type === "integer" ? "1" : "any",
          min: lo,
          max: hi,
          value: s.default !== undefined && s.default !== null ? String(s.default) : "",
        });
        control = [this.labelEl(this.id), help, this.input];
        break;
      }
      case "tensor":
      case "object": {
        this.input = h("textarea", {
          ...common,
          rows: 4,
          spellcheck: "false",
          class: "code",
          value: s.default !== undefined && s.default !== null ? JSON.stringify(s.default, null, 2) : "",
        });
        control = [this.labelEl(this.id), help, this.input];
        break;
      }
      case "multichoice": {
        const chosen = Array.isArray(s.default) ? s.default : [];
        this.checks = s.items.enum.map((value, i) =>
          h("input", {
            type: "checkbox",
            id: `${this.id}-${i}`,
            value: String(value),
            checked: chosen.includes(value),
            "aria-describedby": this.describedBy(),
          }),
        );
        this.checks.forEach((c, i) => (c.dataset.value = JSON.stringify(s.items.enum[i])));
        this.input = this.checks[0];
        control = [
          h(
            "fieldset",
            { class: "group", "aria-describedby": this.describedBy() },
            h("legend", {}, this.labelEl(null)),
            help,
            h(
              "div",
              { class: "choices" },
              this.checks.map((c, i) => h("div", { class: "check" }, c, h("label", { for: c.id, text: String(s.items.enum[i]) }))),
            ),
          ),
        ];
        break;
      }
      case "list": {
        this.items = h("ol", { class: "list-items" });
        const defaults = Array.isArray(s.default) ? s.default : this.required ? [""] : [];
        for (const value of defaults) this.addItem(value);
        const add = h("button", {
          type: "button",
          class: "small",
          text: "Add item",
          "aria-label": `Add an item to ${this.name}`,
          onclick: () => this.addItem("", true),
        });
        this.input = null;
        control = [
          h(
            "fieldset",
            { class: "group", id: this.id, "aria-describedby": this.describedBy() },
            h("legend", {}, this.labelEl(null)),
            help,
            this.items,
            add,
          ),
        ];
        break;
      }
      default: {
        const type = s.format === "password" ? "password" : { date: "date", datetime: "datetime-local" }[this.kind] || "text";
        let value = s.default !== undefined && s.default !== null ? String(s.default) : "";
        if (type === "datetime-local") value = value.replace(/Z$|[+-]\d\d:\d\d$/, "").slice(0, 19);
        this.input = h("input", {
          ...common,
          type,
          minlength: s.minLength,
          maxlength: s.maxLength,
          value,
          autocomplete: "off",
          step: type === "datetime-local" ? "1" : null,
        });
        control = [this.labelEl(this.id), help, this.input];
        if (type === "text" && Array.isArray(s.examples) && s.examples.length) {
          // usual values (not enforced): offered as suggestions, any text still accepted
          const list = h("datalist", { id: `${this.id}-usual` }, ...s.examples.map((v) => h("option", { value: String(v) })));
          this.input.setAttribute("list", list.id);
          control.push(list);
        }
      }
    }
    this.el = wrap([control, this.error]);
  }

  addItem(value, focus = false) {
    const itemSchema = this.schema.items || {};
    const kind = kindOf(itemSchema);
    const li = h("li", { class: "list-item" });
    let input;
    if (kind === "boolean") {
      input = h("select", {}, h("option", { value: "true", text: "true" }), h("option", { value: "false", text: "false" }));
      input.value = String(Boolean(value));
    } else {
      const type = { number: "number", date: "date", datetime: "datetime-local" }[kind] || "text";
      input = h("input", {
        type,
        step: kind === "number" ? (itemSchema.type === "integer" ? "1" : "any") : null,
        inputmode: kind === "number" ? "decimal" : null,
        min: itemSchema.minimum,
        max: itemSchema.maximum,
        value: value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value) : String(value),
      });
    }
    input.dataset.itemType = itemSchema.type || "";
    const error = h("p", { class: "field-error", hidden: true });
    const remove = h("button", { type: "button", class: "small icon", text: "×", onclick: () => {
      const next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      this.relabel();
      const target = next ? next.querySelector("input, select") : this.el.querySelector("button.small:not(.icon)");
      if (target) target.focus();
    } });
    li.append(h("div", { class: "item-row" }, input, remove), error);
    this.items.append(li);
    this.relabel();
    if (focus) input.focus();
  }

  relabel() {
    Array.from(this.items.children).forEach((li, i) => {
      const input = li.querySelector("input, select");
      const error = li.querySelector(".field-error");
      error.id = `${this.id}-item-${i + 1}-error`;
      input.id = `${this.id}-item-${i + 1}`;
      input.setAttribute("aria-label", `${this.name}, item ${i + 1}`);
      input.setAttribute("aria-describedby", `${error.id} ${this.helpId || ""}`.trim());
      li.querySelector("button").setAttribute("aria-label", `Remove item ${i + 1} of ${this.name}`);
    });
  }

  showPreview() {
    for (const u of this.objectUrls) URL.revokeObjectURL(u);
    this.objectUrls = [];
    clear(this.preview);
    for (const file of Array.from(this.input.files || [])) {
      const kind = previewKind(file.type, this.media);
      const src = kind ? URL.createObjectURL(file) : "";
      if (src) this.objectUrls.push(src);
      const caption = h("figcaption", {}, `${file.name} (${formatBytes(file.size)}${file.type ? ", " + file.type : ""})`);
      let media = null;
      if (kind === "image") media = h("img", { src, alt: `Preview of ${file.name}` });
      if (kind === "audio") media = h("audio", { src, controls: true, "aria-label": `Preview of ${file.name}` });
      if (kind === "video") media = h("video", { src, controls: true, "aria-label": `Preview of ${file.name}` });
      this.preview.append(h("figure", { class: `file-preview ${kind}` }, media, caption));
    }
  }

  // Add this field's value to the FormData / URLSearchParams; answer client-side errors.
  collect(data, query) {
    const put = (value) => (this.where === "query" ? query.append(this.name, value) : data.append(this.name, value));
    const hadDefault = Array.isArray(this.schema.default) && this.schema.default.length > 0;
    switch (this.kind) {
      case "file":
      case "files":
        for (const file of Array.from(this.input.files || [])) data.append(this.name, file, file.name);
        return null;
      case "boolean":
        if (this.input.type === "checkbox") put(this.input.checked ? "true" : "false");
        else if (this.input.value !== "") put(this.input.value);
        return null;
      case "multichoice": {
        const values = this.checks.filter((c) => c.checked).map((c) => JSON.parse(c.dataset.value));
        if (values.length || hadDefault) put(JSON.stringify(values));
        return null;
      }
      case "list": {
        const values = Array.from(this.items.querySelectorAll("input, select"))
          .map((input) => [input.value, input.dataset.itemType])
          .filter(([v]) => v !== "")
          .map(([v, type]) => numberOrText(v, type));
        if (values.length || hadDefault) put(JSON.stringify(values));
        return null;
      }
      case "tensor": {
        const text = this.input.value.trim();
        if (!text) return null;
        try {
          if (!Array.isArray(JSON.parse(text))) return ["Must be nested JSON arrays, like [[1, 2], [3, 4]]."];
        } catch (err) {
          return [`This is not valid JSON: ${err.message}`];
        }
        put(text);
        return null;
      }
      case "object": {
        const text = this.input.value.trim();
        if (!text) return null;
        try {
          const parsed = JSON.parse(text);
          if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return ["Must be a JSON object, like {\"key\": 1}."];
        } catch (err) {
          return [`This is not valid JSON: ${err.message}`];
        }
        put(text);
        return null;
      }
      default:
        if (this.input.value !== "") put(this.input.value);
        return null;
    }
  }

  setErrors(value) {
    this.clearErrors();
    const fieldMessages = [];
    const itemMessages = new Map();
    const addItem = (index, msgs) => itemMessages.set(index, [...(itemMessages.get(index) || []), ...msgs]);
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, sub] of Object.entries(value)) {
        if (/^\d+$/.test(key) && this.items) addItem(Number(key), messagesOf(sub));
        else fieldMessages.push(...messagesOf(sub, key));
      }
    } else {
      for (const msg of messagesOf(value)) {
        const m = /^(\d+): (.*)$/s.exec(msg);
        if (m && this.items && this.items.children[Number(m[1])]) addItem(Number(m[1]), [m[2]]);
        else fieldMessages.push(msg);
      }
    }
    for (const [index, msgs] of itemMessages) {
      const li = this.items.children[index];
      if (!li) {
        fieldMessages.push(...msgs.map((m) => `Item ${index + 1}: ${m}`));
        continue;
      }
      const error = li.querySelector(".field-error");
      error.textContent = msgs.join(" ");
      error.hidden = false;
      li.querySelector("input, select").setAttribute("aria-invalid", "true");
    }
    if (fieldMessages.length || itemMessages.size) {
      this.el.classList.add("invalid");
      if (fieldMessages.length) {
        clear(this.error);
        append(this.error, [fieldMessages.length === 1 ? fieldMessages[0] : h("ul", {}, fieldMessages.map((m) => h("li", { text: m })))]);
        this.error.hidden = false;
      }
      for (const el of this.controls()) el.setAttribute("aria-invalid", "true");
    }
  }

  clearErrors() {
    this.el.classList.remove("invalid");
    this.error.hidden = true;
    clear(this.error);
    for (const el of this.el.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const el of this.el.querySelectorAll(".list-item .field-error")) {
      el.hidden = true;
      el.textContent = "";
    }
  }

  controls() {
    if (this.kind === "multichoice") return this.checks;
    if (this.kind === "list") return Array.from(this.items.querySelectorAll("input, select"));
    return [this.input];
  }

  focus() {
    const target = this.el.querySelector('[aria-invalid="true"]') || this.controls()[0] || this.el.querySelector("button");
    if (target) target.focus();
  }
}

// The form of an operation. `onSubmit(form)` is called with the form controller.
export class OperationForm {
  constructor({ op, doc, prefix, submitLabel, busyLabel, onSubmit, extraQuery = [] }) {
    this.prefix = prefix;
    this.onSubmit = onSubmit;
    this.submitLabel = submitLabel;
    this.busyLabel = busyLabel;
    const body = bodyOf(op, doc);
    this.fields = [];
    for (const [name, raw] of Object.entries(body.properties)) {
      this.fields.push(new Field(this, name, resolve(raw, doc), { required: body.required.includes(name), encoding: body.encoding, where: "body" }));
    }
    const queryParams = ((op && op.parameters) || []).filter((p) => p.in === "query" && extraQuery.includes(p.name));
    for (const p of queryParams) {
      const schema = { ...resolve(p.schema, doc) };
      if (!schema.description) schema.description = shortDescription(p);
      if (schema.default === undefined && Array.isArray(schema.enum)) schema.default = schema.enum[0];
      this.fields.push(new Field(this, p.name, schema, { required: Boolean(p.required), encoding: {}, where: "query" }));
    }
    this.button = h("button", { type: "submit", class: "primary", text: submitLabel });
    this.message = h("div", { class: "form-message", id: `${prefix}-message`, role: "alert" });
    this.element = h(
      "form",
      { class: "op-form", id: `${prefix}-form`, novalidate: true, "aria-describedby": `${prefix}-message` },
      this.fields.length ? this.fields.map((f) => f.el) : h("p", { class: "help", text: "This method takes no arguments." }),
      h("div", { class: "actions" }, this.button, this.message),
    );
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.busy) this.submit();
    });
  }

  field(name) {
    return this.fields.find((f) => f.name === name);
  }

  async submit() {
    this.clearErrors();
    const data = new FormData();
    const query = new URLSearchParams();
    const problems = {};
    for (const f of this.fields) {
      const errs = f.collect(data, query);
      if (errs) problems[f.name] = errs;
    }
    if (Object.keys(problems).length) {
      this.showErrors(problems);
      return;
    }
    this.setBusy(true);
    try {
      await this.onSubmit({ data, query, form: this });
    } catch (err) {
      this.showMessage(err.message || String(err));
    } finally {
      this.setBusy(false);
    }
  }

  setBusy(busy) {
    this.busy = busy;
    this.button.disabled = busy;
    this.button.textContent = busy ? this.busyLabel : this.submitLabel;
    this.element.setAttribute("aria-busy", busy ? "true" : "false");
  }

  clearErrors() {
    for (const f of this.fields) f.clearErrors();
    this.showMessage("");
  }

  showMessage(text, kind = "error") {
    clear(this.message);
    this.message.className = `form-message ${text ? kind : ""}`.trim();
    if (text) this.message.append(text);
  }

  // A 422 body: field -> messages. Each message goes next to its field; others near the button.
  showErrors(errors) {
    const others = [];
    const marked = [];
    for (const [name, value] of Object.entries(errors || {})) {
      const f = this.field(name);
      if (f) {
        f.setErrors(value);
        marked.push(f);
      } else {
        others.push(...messagesOf(value, name === "_schema" || name === "" ? "" : name));
      }
    }
    const parts = [];
    if (marked.length) {
      const names = marked.map((f) => f.name).join(", ");
      parts.push(marked.length === 1 ? `Please correct ${names}.` : `Please correct these arguments: ${names}.`);
    }
    parts.push(...others);
    this.showMessage(parts.join(" ") || "Some arguments are invalid.");
    if (marked.length) marked[0].focus();
  }
}

function shortDescription(param) {
  const text = param.description || "";
  const cut = text.indexOf(" The Accept request header");
  return cut > 0 ? text.slice(0, cut) : text;
}
