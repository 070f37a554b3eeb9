// Talking to the modelaas API: the base path, the access token, fetch and EventSource.

import { dispositionName, saveBlob } from "./dom.js";

const TOKEN_KEY = "modelaas-token";

// The base path (--base-path), injected into the page by the server.
export const base = (() => {
  const meta = document.querySelector('meta[name="modelaas-base"]');
  return meta ? meta.getAttribute("content").replace(/\/+$/, "") : "";
})();

export function url(path) {
  return path.startsWith(base + "/") || path === base ? path : base + path;
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

const listeners = new Set();
export function onTokenChange(fn) {
  listeners.add(fn);
}

export function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage refused (private mode): the token lives for this page only */
  }
  memoryToken = value || "";
  for (const fn of listeners) fn(Boolean(value));
}
let memoryToken = "";
function currentToken() {
  return token() || memoryToken;
}
export function hasToken() {
  return Boolean(currentToken());
}

// The token dialog: one at a time, shared by every request that got a 401.
let pendingAsk = null;
function askToken(reason) {
  if (pendingAsk) return pendingAsk;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const why = document.getElementById("token-reason");
  why.textContent = reason || "The server needs an access token.";
  input.value = "";
  pendingAsk = new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener("close", done);
      pendingAsk = null;
      const value = dialog.returnValue === "ok" ? input.value.trim() : "";
      if (value) setToken(value);
      resolve(Boolean(value));
    };
    dialog.addEventListener("close", done);
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
  return pendingAsk;
}

async function messageOf(response) {
  try {
    const body = await response.clone().json();
    if (body && typeof body.message === "string") return body.message;
  } catch {
    /* not JSON */
  }
  return `${response.status} ${response.statusText}`.trim();
}

// fetch() on an API path, with the token; a 401 asks for a token and tries again.
// Network failures reject with an Error whose message says so in plain words.
export async function request(path, init = {}) {
  for (;;) {
    const headers = new Headers(init.headers || {});
    const tok = currentToken();
    if (tok) headers.set("Authorization", `Bearer ${tok}`);
    let response;
    try {
      response = await fetch(url(path), { ...init, headers });
    } catch (err) {
      throw new Error(`The server could not be reached (${err.message || err}).`);
    }
    if (response.status !== 401) return response;
    const reason = tok
      ? `The token was refused: ${await messageOf(response)}`
      : await messageOf(response);
    if (tok) setToken("");
    if (!(await askToken(reason))) return response;
  }
}

export async function json(path, init) {
  const response = await request(path, init);
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  return response.json();
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export { messageOf };

// An EventSource on an API path. EventSource cannot send headers: the token goes in
// ?access_token= (the caller falls back to polling when the server refuses it).
export function events(path) {
  let target = url(path);
  const tok = currentToken();
  if (tok) target += (target.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(tok);
  return new EventSource(target);
}

// Download an API file: a plain link without a token, a fetch with it.
export async function download(path, name) {
  const response = await request(path);
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  const blob = await response.blob();
  saveBlob(blob, dispositionName(response.headers.get("Content-Disposition")) || name);
}
