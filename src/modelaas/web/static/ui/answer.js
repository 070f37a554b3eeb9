// Showing a prediction's answer: pretty JSON (with any data-URI media inline), images,
// audio and video inline, text as text, and a download for anything else.

import { dispositionName, formatBytes, h } from "./dom.js";

const DATA_URI = /^data:((image|audio|video)\/[A-Za-z0-9.+-]+)[^,]*,/;
const LONG = 160;

const EXTENSIONS = {
  "application/json": "json",
  "application/pdf": "pdf",
  "application/zip": "zip",
  "text/plain": "txt",
  "text/csv": "csv",
  "text/html": "html",
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/gif": "gif",
  "image/webp": "webp",
  "image/svg+xml": "svg",
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/mpeg": "mp3",
  "audio/ogg": "ogg",
  "video/mp4": "mp4",
  "video/webm": "webm",
};

function extensionOf(media) {
  return EXTENSIONS[media] || (media.split("/")[1] || "bin").replace(/[^a-z0-9]/gi, "").slice(0, 8) || "bin";
}

// Every data: URI of image/audio/video in a JSON value, with its path ("predictions.image").
export function findMedia(value, path = "", found = []) {
  if (found.length >= 50) return found;
  if (typeof value === "string") {
    const m = DATA_URI.exec(value);
    if (m) found.push({ path: path || "(answer)", media: m[1], kind: m[2], uri: value });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => findMedia(v, `${path}[${i}]`, found));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) findMedia(v, path ? `${path}.${k}` : k, found);
  }
  return found;
}

// JSON text for people: long data URIs shortened (the download keeps them whole).
function shortened(value) {
  return JSON.stringify(
    value,
    (_key, v) => (typeof v === "string" && v.length > LONG && v.startsWith("data:") ? `${v.slice(0, 48)}… (${v.length} characters)` : v),
    2,
  );
}

// Pretty JSON as coloured spans (textContent only).
export function jsonView(value) {
  const text = shortened(value);
  const pre = h("pre", { class: "json", tabindex: "0", "aria-label": "Answer as JSON" });
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const m of text.matchAll(token)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    if (m[1] && m[2]) {
      pre.append(h("span", { class: "j-key", text: m[1] }), m[2]);
    } else if (m[1]) {
      pre.append(h("span", { class: "j-str", text: m[1] }));
    } else if (m[3]) {
      pre.append(h("span", { class: "j-lit", text: m[3] }));
    } else {
      pre.append(h("span", { class: "j-num", text: m[4] }));
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) pre.append(text.slice(last));
  return pre;
}

function mediaElement(kind, src, label) {
  if (kind === "image") return h("img", { src, alt: label, class: "answer-media" });
  if (kind === "audio") return h("audio", { src, controls: true, "aria-label": label, class: "answer-media" });
  return h("video", { src, controls: true, "aria-label": label, class: "answer-media" });
}

function downloadLink(href, name, text) {
  return h("a", { href, download: name, class: "button-link", text });
}

// Render a fetch Response (already known to be 2xx) into `target`; answers a summary line.
export async function renderAnswer(target, response, { model, objectUrls }) {
  const type = (response.headers.get("Content-Type") || "application/octet-stream").split(";")[0].trim().toLowerCase();
  const named = dispositionName(response.headers.get("Content-Disposition"));
  const blob = await response.blob();
  const keep = (b) => {
    const u = URL.createObjectURL(b);
    objectUrls.push(u);
    return u;
  };
  const summary = `${type}, ${formatBytes(blob.size)}`;
  const fileName = named || `${model}-answer.${extensionOf(type)}`;
  const out = h("div", { class: "answer-body", dataset: { type } });

  if (type === "application/json" || type.endsWith("+json")) {
    const text = await blob.text();
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      out.append(h("pre", { class: "json", text }));
      target.append(out);
      return summary;
    }
    const media = findMedia(value);
    if (media.length) {
      out.append(
        h(
          "div",
          { class: "answer-gallery" },
          media.map((m) =>
            h("figure", {}, mediaElement(m.kind, m.uri, `${m.path} (${m.media})`), h("figcaption", { text: `${m.path} · ${m.media}` })),
          ),
        ),
      );
    }
    out.append(jsonView(value));
    out.append(h("p", { class: "answer-actions" }, downloadLink(keep(new Blob([text], { type })), fileName, "Download JSON")));
  } else if (/^(image|audio|video)\//.test(type)) {
    const kind = type.split("/")[0];
    const src = keep(blob);
    out.append(h("figure", {}, mediaElement(kind, src, `The answer (${type})`), h("figcaption", { text: summary })));
    out.append(h("p", { class: "answer-actions" }, downloadLink(src, fileName, `Download ${fileName}`)));
  } else if (type.startsWith("text/") && type !== "text/html" && blob.size <= 2 * 1024 * 1024) {
    out.append(h("pre", { class: "text-answer", tabindex: "0", "aria-label": "Answer as text", text: await blob.text() }));
    out.append(h("p", { class: "answer-actions" }, downloadLink(keep(blob), fileName, `Download ${fileName}`)));
  } else {
    out.append(
      h(
        "p",
        { class: "answer-file" },
        `The answer is a file (${summary}). `,
        downloadLink(keep(blob), fileName, `Download ${fileName}`),
      ),
    );
  }
  target.append(out);
  return summary;
}
