// One agent's page: what it is, its conversation, its metrics, its followed logs and a
// terminal. The header is kept current from the store (events); each panel cleans up after itself.
import { api, ApiError } from "./api.js";
import { bytes, describeError, duration, h, setText, since } from "./dom.js";
import { chartPanel } from "./chart.js";
import { conversationPanel } from "./conversation.js";
import { usageText } from "./fleet.js";
import { logsPanel } from "./logs.js";
import { RUNNING, SOURCES } from "./sources.js";
import { terminalPanel } from "./terminal.js";

const SOURCE = SOURCES[0];

export class AgentView {
  constructor(store, events, root, agentId) {
    this.store = store;
    this.events = events;
    this.root = root;
    this.agentId = agentId;
    this.panels = [];
  }

  mount() {
    this.title = h("h1", { "data-test": "agent-title" }, this.agentId);
    this.status = h("span", { class: "status", "data-test": "agent-status" });
    this.facts = h("dl", { class: "facts" });
    this.notice = h("p", { class: "notice", "aria-live": "polite" });
    const restart = h("button", { type: "button" }, "Restart");
    const stop = h("button", { type: "button", class: "danger" }, "Stop and remove");
    restart.addEventListener("click", () => this.act(restart, "POST", SOURCE.restart(this.agentId)));
    stop.addEventListener("click", () => this.act(stop, "DELETE", SOURCE.stop(this.agentId)));
    this.panels = [
      conversationPanel(this.agentId, this.events),
      chartPanel(this.agentId, this.events),
      logsPanel(this.agentId),
      terminalPanel(this.agentId),
    ];
    this.root.replaceChildren(
      h("p", {}, h("a", { href: "#/" }, "← Fleet")),
      h("section", { class: "agent-head" }, this.title, this.status, restart, stop),
      this.notice,
      this.facts,
      h("div", { class: "panels" }, this.panels.map((panel) => panel.element)),
    );
    this.unsubscribe = this.store.subscribe(() => this.paint());
    this.clock = setInterval(() => this.paint(), 1000);
    this.paint();
    if (!this.store.find(SOURCE.kind, this.agentId)) this.fetch();
  }

  dispose() {
    this.unsubscribe();
    clearInterval(this.clock);
    for (const panel of this.panels) panel.dispose();
  }

  async fetch() {
    try {
      this.store.put(SOURCE, await api("GET", SOURCE.get(this.agentId)));
    } catch (error) {
      setText(this.notice, describeError(error));
    }
  }

  paint() {
    const item = this.store.find(SOURCE.kind, this.agentId);
    if (!item) {
      setText(this.status, this.store.loaded ? "gone" : "…");
      return;
    }
    setText(this.title, item.name && item.name !== item.id ? `${item.name} (${item.id})` : item.id);
    setText(this.status, item.status);
    this.status.className = `status status-${item.status}`;
    const resources = item.resources || {};
    const facts = [
      ["Type", item.type],
      ["Role", item.role || "–"],
      ["Image", item.image],
      ["Limits", `${resources.cpu ?? "?"} cpu · ${bytes(resources.memoryBytes)} memory · ${resources.pidsLimit ?? "?"} processes`],
      ["Uptime", duration(RUNNING.has(item.status) ? since(item.startedAt || item.createdAt) : null)],
      ["Network", item.network],
      ["Model usage", usageText(item.usage)],
      ["Restarts", String(item.restartCount ?? 0)],
    ];
    if (item.error) facts.push(["Error", `${item.errorCode || ""} ${item.error}`]);
    const rows = facts.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value ?? "")]);
    this.facts.replaceChildren(...rows);
  }

  async act(button, method, route) {
    button.disabled = true;
    try {
      const result = await api(method, route);
      if (result) this.store.put(SOURCE, result);
      else this.store.remove(SOURCE, this.agentId);
      setText(this.notice, method === "DELETE" ? "Stopped and removed." : "Restarted.");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) setText(this.notice, describeError(error));
    } finally {
      button.disabled = false;
    }
  }
}
