// Building the page without HTML strings: every piece of text, above all what an agent prints,
// goes in as a text node. The page's Trusted Types policy (trusted-types 'none') makes any HTML
// sink throw, so a slip here fails loudly instead of running an agent's markup.

const ATTRIBUTES = new Set([
  "class", "href", "type", "name", "value", "placeholder", "title", "for", "id", "role",
  "disabled", "required", "autocomplete", "min", "max", "step", "rows", "cols", "maxlength",
  "aria-label", "aria-live", "aria-sort", "colspan", "spellcheck", "hidden", "selected",
  "elementtiming",
]);

/** h("td", {class: "x"}, "text", child) -> an element; strings become text nodes. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("data-")) {
      element.setAttribute(name, String(value));
    } else if (ATTRIBUTES.has(name)) {
      element.setAttribute(name, value === true ? "" : String(value));
    } else {
      throw new Error(`attribute ${name} is not allowed`);
    }
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replace an element's content with text (never markup). */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** Run fn once the browser has nothing more urgent to do (drawing the first view above all), or
 * after timeoutMs at the latest; shortly after, where requestIdleCallback is missing (Safari). */
export function whenIdle(fn, timeoutMs = 500) {
  if (typeof requestIdleCallback === "function") requestIdleCallback(() => fn(), { timeout: timeoutMs });
  else setTimeout(fn, 50);
}

export function clear(element) {
  element.replaceChildren();
}

// C0 controls (ESC above all) would otherwise vanish or be taken for terminal commands by a
// reader; shown as their Unicode pictures, hostile escape sequences stay visible and inert.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

export function visible(text) {
  return String(text).replace(CONTROLS, (c) =>
    c === "\u007f" ? "\u2421" : String.fromCharCode(0x2400 + c.charCodeAt(0)),
  );
}

export function bytes(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(value);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  const shown = n >= 100 || unit === 0 ? n.toFixed(0) : n.toFixed(1).replace(/\.0$/, "");
  return `${shown} ${units[unit]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "–";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function since(iso, now = Date.now()) {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? null : Math.max(0, (now - t) / 1000);
}

export function time(iso) {
  const t = iso ? new Date(iso) : null;
  return t && !Number.isNaN(t.getTime()) ? t.toLocaleTimeString() : "";
}

/** An error from the API (or the network) as one line: "CODE: message — resolution". */
export function describeError(error) {
  if (error && error.code) {
    return `${error.code}: ${error.message}${error.resolution ? ` — ${error.resolution}` : ""}`;
  }
  return String(error && error.message ? error.message : error);
}
