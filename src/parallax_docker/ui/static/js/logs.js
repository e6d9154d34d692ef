// Followed logs: GET /agents/{id}/logs?follow=true streams lines as the agent prints them.
// Each line is a text node (control characters shown as symbols); the oldest go past MAX_LINES.
// A stream the network broke (Chrome drops requests in flight whenever the host's interfaces
// change, as Docker's do at each container start; a restarted service does too) is followed
// again from where it broke, without showing a line twice; one that ended (the agent stopped)
// or that the service refused for good (an unknown agent) is not.
import { ApiError, lines, path } from "./api.js";
import { describeError, h, setText, visible } from "./dom.js";

const MAX_LINES = 2000;
const TAIL = 500;
const RESUME_MS = [250, 500, 1000, 2000, 5000];

/** Docker's RFC 3339 time (nanoseconds, trailing zeros trimmed) as a key that sorts as text. */
export function stamp(raw) {
  const space = raw.indexOf(" ");
  const time = space > 0 ? raw.slice(0, space) : "";
  const whole = Date.parse(time.slice(0, 19) + "Z");
  if (Number.isNaN(whole) || !time.endsWith("Z")) return { key: null, seconds: null, text: raw };
  const seconds = Math.floor(whole / 1000);
  const fraction = ((/\.(\d{1,9})Z$/.exec(time) || [])[1] || "").padEnd(9, "0");
  return { key: `${String(seconds).padStart(12, "0")}.${fraction}`, seconds, text: raw.slice(space + 1) };
}

// Broken off, or refused for a while: the service unreachable, or answering 502 to 504 (a
// service starting again says 503 until it reaches the engine).
function broken(error) {
  if (error instanceof TypeError) return true;
  return error instanceof ApiError && (error.status === 0 || (error.status >= 502 && error.status <= 504));
}

export function logsPanel(agentId) {
  const output = h("div", { class: "log", "data-test": "logs", role: "log" });
  const state = h("span", { class: "muted", "data-test": "logs-state" });
  const again = h("button", { type: "button", hidden: true }, "Follow again");
  const panel = h("section", { class: "panel logs-panel" }, h("h2", {}, "Logs ", state, again), output);
  let controller = null;
  let timer = null;
  // The newest line's time and the lines shown at exactly that time: a resumed stream starts
  // at that whole second and skips what is older, or the same line at the same time.
  let last = null;

  function show(raw) {
    const { key, seconds, text } = stamp(raw);
    if (key !== null && last !== null) {
      if (key < last.key || (key === last.key && last.shown.has(raw))) return;
    }
    if (key !== null) {
      if (last === null || key !== last.key) last = { key, seconds, shown: new Set() };
      last.shown.add(raw);
    }
    const stick = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
    output.append(h("div", { class: "line" }, visible(text)));
    if (output.childElementCount > MAX_LINES) output.firstElementChild.remove();
    if (stick) output.scrollTop = output.scrollHeight;
  }

  async function follow(attempt = 0) {
    timer = null;
    controller = new AbortController();
    again.hidden = true;
    if (attempt === 0 && last === null) output.replaceChildren();
    setText(state, attempt === 0 ? "following" : "reconnecting…");
    const from = last === null ? `tail=${TAIL}` : `since=${last.seconds}`;
    let got = false;
    try {
      const query = `?follow=true&timestamps=true&${from}`;
      for await (const raw of lines(path`/agents/${agentId}/logs` + query, controller.signal)) {
        if (!got) setText(state, "following");
        got = true;
        show(raw);
      }
      setText(state, "the stream ended (the agent stopped?)");
    } catch (error) {
      if (error.name === "AbortError") return;
      if (broken(error)) {
        const next = got ? 1 : attempt + 1;
        setText(state, error instanceof ApiError && error.status ? `reconnecting… (${describeError(error)})` : "reconnecting…");
        timer = setTimeout(() => follow(next), RESUME_MS[Math.min(next, RESUME_MS.length) - 1]);
        return;
      }
      setText(state, describeError(error));
    }
    again.hidden = false;
  }

  again.addEventListener("click", () => {
    last = null;
    follow();
  });
  follow();
  const dispose = () => {
    clearTimeout(timer);
    if (controller) controller.abort();
  };
  return { element: panel, dispose };
}
