// Followed logs: GET /agents/{id}/logs?follow=true streams lines as the agent prints them.
// Each line is a text node (control characters shown as symbols); the oldest go past MAX_LINES.
import { lines, path } from "./api.js";
import { describeError, h, setText, visible } from "./dom.js";

const MAX_LINES = 2000;
const TAIL = 500;

export function logsPanel(agentId) {
  const output = h("div", { class: "log", "data-test": "logs", role: "log" });
  const state = h("span", { class: "muted" });
  const again = h("button", { type: "button", hidden: true }, "Follow again");
  const panel = h("section", { class: "panel logs-panel" }, h("h2", {}, "Logs ", state, again), output);
  let controller = null;

  async function follow() {
    controller = new AbortController();
    again.hidden = true;
    output.replaceChildren();
    setText(state, "following");
    try {
      for await (const line of lines(path`/agents/${agentId}/logs` + `?follow=true&tail=${TAIL}`, controller.signal)) {
        const stick = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
        output.append(h("div", { class: "line" }, visible(line)));
        if (output.childElementCount > MAX_LINES) output.firstElementChild.remove();
        if (stick) output.scrollTop = output.scrollHeight;
      }
      setText(state, "the stream ended (the agent stopped?)");
    } catch (error) {
      if (error.name === "AbortError") return;
      setText(state, describeError(error));
    }
    again.hidden = false;
  }

  again.addEventListener("click", follow);
  follow();
  return { element: panel, dispose: () => controller && controller.abort() };
}
