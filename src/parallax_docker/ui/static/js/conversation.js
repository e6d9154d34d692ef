// The conversation: GET /agents/{id}/messages, then `message` events as they come (the task
// and, when the turn ends, the answer); read again whenever events may have been missed.
// Sending is POST /agents/{id}/send without waiting: the answer arrives as an event, so the
// page never holds a request open for a whole turn.
import { api, path } from "./api.js";
import { describeError, h, setText, time, visible } from "./dom.js";

function summary(metadata = {}) {
  const parts = [];
  if (typeof metadata.durationMs === "number") parts.push(`${(metadata.durationMs / 1000).toFixed(1)} s`);
  if (typeof metadata.costUsd === "number") parts.push(`$${metadata.costUsd.toFixed(4)}`);
  if (metadata.code) parts.push(String(metadata.code));
  return parts.join(" · ");
}

export function conversationPanel(agentId, events) {
  const list = h("div", { class: "messages", "data-test": "messages", "aria-live": "polite" });
  const seen = new Set();
  const input = h("textarea", { name: "message", rows: 3, placeholder: "A task for the agent (Ctrl+Enter sends)", "data-test": "task", spellcheck: "false" });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const status = h("p", { class: "form-status", "aria-live": "polite", "data-test": "send-status" });
  const form = h("form", { class: "send" }, input, send, status);
  const panel = h("section", { class: "panel conversation" }, h("h2", {}, "Conversation"), list, form);

  function add(message) {
    if (!message || seen.has(message.id)) return;
    seen.add(message.id);
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    const who = message.direction === "inbound" ? "task" : message.type === "error" ? "error" : "answer";
    list.append(
      h(
        "article",
        { class: `message ${message.direction} type-${who}`, "data-direction": message.direction, "data-type": message.type },
        h("header", {}, h("strong", {}, who), " ", h("time", {}, time(message.timestamp)), " ", h("span", { class: "muted" }, summary(message.metadata))),
        h("pre", { class: "content" }, visible(message.content)),
      ),
    );
    if (stick) list.scrollTop = list.scrollHeight;
  }

  // Events that come while the history is on its way wait for it, so the order holds.
  let early = null;
  const unlisten = events.listen((frame) => {
    const message = frame.event === "message" && frame.data ? frame.data.message : null;
    if (!message || message.agentId !== agentId) return;
    if (early) {
      early.push(message);
      return;
    }
    add(message);
    if (message.direction === "outbound") setText(status, "");
  });

  const aborter = new AbortController();
  async function load() {
    early = early || [];
    try {
      const found = await api("GET", path`/agents/${agentId}/messages` + "?limit=200", undefined, { signal: aborter.signal });
      for (const message of found.messages) add(message);
    } catch (error) {
      if (aborter.signal.aborted) return;
      setText(status, describeError(error));
    }
    for (const message of early) add(message);
    early = null;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = input.value;
    if (!message.trim()) return;
    send.disabled = true;
    try {
      await api("POST", path`/agents/${agentId}/send`, { message });
      input.value = "";
      setText(status, "Sent; the answer appears here when the turn ends.");
    } catch (error) {
      setText(status, describeError(error));
    } finally {
      send.disabled = false;
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });

  // One read at a time: a resync during the first read reads again after it.
  let reads = Promise.resolve();
  const read = () => (reads = reads.then(load));
  read();
  // The stream was (re)opened or dropped events: a message may have been missed meanwhile (the
  // messages already shown are kept; those read again are not added twice).
  const unresync = events.onResync(read);
  const dispose = () => {
    unlisten();
    unresync();
    aborter.abort();
  };
  return { element: panel, dispose };
}
