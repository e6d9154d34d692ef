// The one way the page talks to the service: same-origin fetches and WebSockets, the API token
// from this tab's sessionStorage (asked once, gone when the tab closes), errors as ApiError.

// boot.js repeats this key, and the request made in request(), for its early read: change both.
const TOKEN_KEY = "parallax-docker.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const known = body && typeof body === "object" && typeof body.error === "string";
    super(known ? body.error : `HTTP ${status}`);
    this.status = status;
    this.code = known ? body.code : `HTTP_${status}`;
    this.resolution = known ? body.resolution : "";
  }
}

function headers(json) {
  const result = { accept: "application/json" };
  if (json) result["content-type"] = "application/json";
  const current = token();
  if (current) result.authorization = `Bearer ${current}`;
  return result;
}

let unauthorized = () => {};

/** Called whenever the service refuses the token (or wants one); the app then asks for it. */
export function onUnauthorized(callback) {
  unauthorized = callback;
}

// Chrome fails the requests in flight whenever the host's network interfaces change, as
// Docker's do at each container start (net::ERR_NETWORK_CHANGED); a read is sent again.
const READ_RETRIES_MS = [100, 400];

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

// A read boot.js sent before the modules loaded, taken once by the first read of its path (unless
// the token changed since, or the read failed).
async function early(method, path, signal) {
  const reads = globalThis.parallaxEarlyReads;
  const sent = method === "GET" && reads instanceof Map ? reads.get(path) : undefined;
  if (!sent) return null;
  reads.delete(path);
  if (sent.token !== token() || signal?.aborted) return null;
  return sent.response;
}

async function request(method, path, body, signal) {
  let response = await early(method, path, signal);
  for (let attempt = 0; !response; attempt++) {
    try {
      response = await fetch(path, {
        method,
        headers: headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        credentials: "omit",
        cache: "no-store",
        redirect: "error",
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      if (method === "GET" && attempt < READ_RETRIES_MS.length) {
        await pause(READ_RETRIES_MS[attempt], signal);
        continue;
      }
      throw new ApiError(0, { error: "the service cannot be reached", code: "OFFLINE", resolution: "Is parallax-docker serve running?" });
    }
  }
  if (response.status === 401) unauthorized();
  return response;
}

/** A JSON call; resolves to the body (null for 204), rejects with ApiError. */
export async function api(method, path, body, { signal } = {}) {
  const response = await request(method, path, body, signal);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A streamed GET (followed logs): yields the body's lines as they arrive. */
export async function* lines(path, signal) {
  const response = await request("GET", path, undefined, signal);
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const parts = pending.split("\n");
    pending = parts.pop();
    yield* parts;
  }
  if (pending) yield pending;
}

export function path(strings, ...values) {
  // A tagged template that escapes each value as one path segment: /agents/${id}/logs.
  return strings.reduce((out, part, i) => out + part + (i < values.length ? encodeURIComponent(values[i]) : ""), "");
}

function base64url(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A WebSocket to this service; the token rides in the subprotocol the server accepts. */
export function socket(route) {
  const url = new URL(route, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  const current = token();
  return current ? new WebSocket(url, ["bearer", `bearer.${base64url(current)}`]) : new WebSocket(url);
}

export const WS_UNAUTHORIZED = 1008;
