// The fleet view: one row per item of every source, kept current by the store (events), with
// filter, sort, stop / restart and the spawn form. CPU and memory come on the event stream too:
// the view names the agents of the rows on screen (watchMetrics) and the service sends their
// metrics every METRICS_EVERY_S, so a fleet of hundreds costs what fits on screen.
// The first view is drawn with the rows that fill the screen; the others are built and added
// once the browser is idle, a moment later.
import { api, ApiError } from "./api.js";
import { bytes, describeError, duration, h, setText, since, whenIdle } from "./dom.js";
import { RUNNING, SOURCES, STATUSES, AGENT_TYPES } from "./sources.js";
import { spawnForm } from "./spawn.js";

const METRICS_EVERY_S = 5;
const CONFIRM_MS = 4000;
// No row is shorter than this (its buttons' line and padding), so the height left below the
// table's top over it is at least as many rows as the screen can show.
const MIN_ROW_PX = 36;

const COLUMNS = [
  { key: "name", label: "Name", sort: (r) => (r.item.name || r.item.id).toLowerCase() },
  { key: "status", label: "Status", sort: (r) => STATUSES.indexOf(r.item.status) },
  { key: "type", label: "Type", sort: (r) => typeText(r) },
  { key: "role", label: "Role", sort: (r) => (r.item.role || "").toLowerCase() },
  { key: "uptime", label: "Uptime", sort: (r) => uptimeOf(r.item) ?? -1 },
  { key: "cpu", label: "CPU", sort: (r) => (r.metrics ? r.metrics.cpu : -1) },
  { key: "memory", label: "Memory", sort: (r) => (r.metrics ? r.metrics.memory : -1) },
  { key: "usage", label: "Model usage", sort: (r) => usageCost(r.item.usage) },
  { key: "actions", label: "" },
];

/** "custom" for an agent, "thread · custom" for a thread (the type of its agent). */
function typeText({ source, item }) {
  const type = source.typeOf(item);
  return source.kind === "agent" ? type : `${source.label} · ${type}`;
}

function uptimeOf(item) {
  return RUNNING.has(item.status) ? since(item.startedAt || item.createdAt) : null;
}

function usageCost(usage) {
  return usage && typeof usage.costUsd === "number" ? usage.costUsd : -1;
}

/** "$0.0123 · 1,234 tokens" from a handle's usage, when the service meters it. */
export function usageText(usage) {
  if (!usage || typeof usage !== "object") return "–";
  const parts = [];
  if (typeof usage.costUsd === "number") parts.push(`$${usage.costUsd.toFixed(4)}`);
  const tokens = ["inputTokens", "outputTokens", "input_tokens", "output_tokens"]
    .map((k) => usage[k])
    .filter((v) => typeof v === "number")
    .reduce((a, b) => a + b, 0);
  if (tokens) parts.push(`${tokens.toLocaleString()} tokens`);
  return parts.length ? parts.join(" · ") : "–";
}

// A bar in tenths, drawn by a class ("fill p40"): no <meter> (each has a shadow tree, which
// costs at hundreds of rows) and no style attribute (the page's CSP allows none).
const bar = () => h("span", { class: "gauge" }, h("span", { class: "fill p0" }));

let prototype = null;

function rowPrototype() {
  if (!prototype) {
    const cells = COLUMNS.map((column) => h("td", { role: "cell", "data-column": column.key }));
    const byKey = Object.fromEntries(COLUMNS.map((column, i) => [column.key, cells[i]]));
    byKey.name.append(h("a", {}), h("span", { class: "sub" }));
    byKey.cpu.append(bar(), h("span", {}));
    byKey.memory.append(bar(), h("span", {}));
    byKey.actions.append(
      h("button", { type: "button", "data-action": "restart" }, "Restart"),
      h("button", { type: "button", class: "danger", "data-action": "stop" }, "Stop"),
    );
    prototype = h("tr", { role: "row" }, cells);
  }
  return prototype;
}

function setBar(b, percent) {
  const value = Math.max(0, Math.min(100, percent || 0));
  // Some use, however small, shows as a sliver (p2) rather than as none.
  const tenth = value > 0 && value < 5 ? 2 : Math.round(value / 10) * 10;
  const name = `fill p${tenth}`;
  if (b.fill.className !== name) b.fill.className = name;
}

export class FleetView {
  constructor(store, events, root) {
    this.store = store;
    this.events = events;
    this.root = root;
    this.rows = new Map(); // key -> row
    this.visible = new Set();
    this.sortKey = "name";
    this.sortDir = 1;
    this.order = [];
    this.layoutPending = false;
    this.clockTimer = null;
    this.rendered = false; // the first view is drawn
    this.complete = false; // and every row of it is in the table
    this.disposed = false;
    this.onHidden = () => this.watchVisible();
  }

  mount() {
    this.filterText = h("input", { type: "search", placeholder: "Filter: name, id, role, image…", "aria-label": "Filter", "data-test": "filter" });
    this.filterStatus = h("select", { "aria-label": "Status", "data-test": "filter-status" }, h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s }, s)));
    this.filterType = h("select", { "aria-label": "Type", "data-test": "filter-type" }, h("option", { value: "" }, "any type"), AGENT_TYPES.map((t) => h("option", { value: t }, t)));
    for (const input of [this.filterText, this.filterStatus, this.filterType]) {
      input.addEventListener("input", () => this.scheduleLayout());
    }
    this.count = h("span", { class: "count", elementtiming: "fleet-count", "data-test": "count" });
    this.notice = h("p", { class: "notice", "aria-live": "polite", "data-test": "notice" });
    this.headers = COLUMNS.map((column) => this.header(column));
    this.body = h("tbody", { role: "rowgroup" });
    this.body.addEventListener("click", (event) => this.onClick(event));
    this.empty = h("p", { class: "muted empty", hidden: true }, "No agents. Spawn one with the form above, or POST /agents.");
    const spawn = h("details", { class: "spawn-box" }, h("summary", {}, "Spawn an agent"), spawnForm((handle) => this.store.put(SOURCES[0], handle)));
    this.root.replaceChildren(
      h("section", { class: "toolbar" }, this.filterText, this.filterStatus, this.filterType, this.count),
      spawn,
      this.notice,
      // Roles as well: the table is laid out as a grid (app.css), which can hide a table's own.
      h("table", { class: "fleet", role: "table", "data-test": "fleet" }, h("thead", { role: "rowgroup" }, h("tr", { role: "row" }, this.headers)), this.body),
      this.empty,
    );
    this.observer = new IntersectionObserver((entries) => this.onVisibility(entries));
    this.unsubscribe = this.store.subscribe((change) => this.onChange(change));
    this.unlisten = this.events.listen((frame) => {
      if (frame.event === "agent_metrics") this.onMetrics(frame.data.agents);
    });
    document.addEventListener("visibilitychange", this.onHidden);
    this.clockTimer = setInterval(() => this.tick(), 1000);
    if (this.store.loaded) this.onChange({ full: true });
    else if (this.store.error) this.onChange({ error: this.store.error });
  }

  dispose() {
    this.disposed = true;
    this.unsubscribe();
    this.unlisten();
    document.removeEventListener("visibilitychange", this.onHidden);
    this.events.watchMetrics([]);
    this.observer.disconnect();
    clearInterval(this.clockTimer);
  }

  header(column) {
    if (!column.sort) return h("th", { role: "columnheader" }, column.label);
    const button = h("button", { type: "button", class: "sort", "data-sort": column.key }, column.label);
    button.addEventListener("click", () => {
      this.sortDir = this.sortKey === column.key ? -this.sortDir : 1;
      this.sortKey = column.key;
      this.scheduleLayout();
    });
    return h("th", { role: "columnheader", "data-column": column.key }, button);
  }

  onChange(change) {
    if (change.error) {
      setText(this.notice, describeError(change.error));
      return;
    }
    if (change.full) {
      for (const [key, row] of this.rows) {
        if (!this.store.items.has(key)) this.drop(key, row);
      }
      for (const [key, entry] of this.store.items) this.upsert(key, entry);
    } else if (change.removed) {
      const row = this.rows.get(change.key);
      if (row) this.drop(change.key, row);
    } else {
      const entry = this.store.items.get(change.key);
      if (entry) this.upsert(change.key, entry);
    }
    this.scheduleLayout();
    // A row on screen may have started or stopped running.
    this.watchVisible();
  }

  upsert(key, { source, item }) {
    let row = this.rows.get(key);
    if (!row) {
      // Its elements are made when it is first shown (build).
      row = { key, source, tr: null, item: null, metrics: null };
      this.rows.set(key, row);
    }
    row.item = item;
    if (row.tr) this.paint(row);
  }

  drop(key, row) {
    if (row.tr) {
      this.observer.unobserve(row.tr);
      row.tr.remove();
    }
    this.rows.delete(key);
    this.visible.delete(key);
  }

  build(row) {
    if (row.tr) return row.tr;
    // Rows are clones of one prototype (much cheaper than building each element, at hundreds
    // of rows); the buttons' clicks are handled once, on the table body.
    const tr = rowPrototype().cloneNode(true);
    tr.dataset.key = row.key;
    const cells = {};
    COLUMNS.forEach((column, i) => (cells[column.key] = tr.children[i]));
    const [link, sub] = cells.name.children;
    const [cpuBar, cpuText] = cells.cpu.children;
    const [memBar, memText] = cells.memory.children;
    const [restart, stop] = cells.actions.children;
    restart.hidden = !row.source.restart;
    Object.assign(row, {
      tr, cells, link, sub, cpuText, memText, restart, stop,
      cpuBar: { fill: cpuBar.firstChild },
      memBar: { fill: memBar.firstChild },
    });
    this.paint(row);
    this.observer.observe(tr);
    return tr;
  }

  onClick(event) {
    const button = event.target.closest("button[data-action]");
    const row = button && this.rows.get(button.closest("tr").dataset.key);
    if (!row) return;
    if (button.dataset.action === "restart" && row.source.restart) this.restart(row);
    if (button.dataset.action === "stop") this.stop(row);
  }

  paint(row) {
    const { item, cells, source } = row;
    row.link.href = source.view(item);
    setText(row.link, item.name || item.id);
    setText(row.sub, item.name && item.name !== item.id ? item.id : "");
    setText(cells.status, item.status);
    cells.status.className = `status status-${STATUSES.includes(item.status) ? item.status : "unknown"}`;
    row.tr.dataset.status = item.status;
    setText(cells.type, typeText(row));
    setText(cells.role, item.role || "");
    setText(cells.usage, usageText(item.usage));
    this.paintClock(row);
    this.paintMetrics(row);
  }

  paintClock(row) {
    setText(row.cells.uptime, duration(uptimeOf(row.item)));
  }

  paintMetrics(row) {
    const limits = row.item.resources || {};
    const m = RUNNING.has(row.item.status) ? row.metrics : null;
    setBar(row.cpuBar, m ? m.cpu : 0);
    // A thread's handle carries no limits (its agent's does): its CPU shows without one.
    const cpu = m ? `${m.cpu.toFixed(1)}%` : "–";
    setText(row.cpuText, limits.cpu === undefined ? cpu : `${cpu} of ${limits.cpu} cpu`);
    setBar(row.memBar, m ? m.memoryPercent : 0);
    setText(row.memText, `${m ? bytes(m.memory) : "–"} / ${bytes(m ? m.memoryLimit : limits.memoryBytes)}`);
  }

  matches(row) {
    const item = row.item;
    if (this.filterStatus.value && item.status !== this.filterStatus.value) return false;
    if (this.filterType.value && row.source.typeOf(item) !== this.filterType.value) return false;
    const text = this.filterText.value.trim().toLowerCase();
    if (!text) return true;
    return [item.id, item.name, item.role, typeText(row), item.status, item.image]
      .some((v) => typeof v === "string" && v.toLowerCase().includes(text));
  }

  scheduleLayout() {
    if (this.layoutPending) return;
    this.layoutPending = true;
    requestAnimationFrame(() => {
      this.layoutPending = false;
      this.layout();
    });
  }

  layout() {
    if (this.disposed) return;
    const column = COLUMNS.find((c) => c.key === this.sortKey);
    const shown = [...this.rows.values()].filter((row) => this.matches(row));
    shown.sort((a, b) => {
      const x = column.sort(a);
      const y = column.sort(b);
      return (x < y ? -1 : x > y ? 1 : a.key < b.key ? -1 : 1) * this.sortDir;
    });
    const first = !this.rendered && this.store.loaded;
    const attached = first ? shown.slice(0, this.rowsOnScreen()) : shown;
    const changed = attached.length !== this.order.length || attached.some((row, i) => this.order[i] !== row);
    if (changed) {
      // Rows not shown are detached, not hidden: the observer then counts only what is on screen.
      this.body.replaceChildren(...attached.map((row) => this.build(row)));
      this.order = attached;
    }
    for (const th of this.headers) {
      const key = th.dataset.column;
      if (key) th.setAttribute("aria-sort", key === this.sortKey ? (this.sortDir > 0 ? "ascending" : "descending") : "none");
    }
    setText(this.count, `${shown.length} of ${this.rows.size}`);
    this.empty.hidden = this.rows.size > 0 || !this.store.loaded;
    // The markers the browser tests read. The count, first given text here, is drawn in the same
    // frame as the first view's rows (its element timing); then every row is in the page.
    if (first) {
      this.rendered = true;
      performance.mark("parallax:fleet-first-view", { detail: { rows: attached.length } });
      if (attached.length < shown.length) whenIdle(() => this.scheduleLayout());
    }
    if (this.rendered && !this.complete && attached.length === shown.length) {
      this.complete = true;
      performance.mark("parallax:fleet-rendered");
      document.documentElement.dataset.rendered = "fleet";
    }
  }

  /** How many rows can show between the table body's top and the bottom of the window. */
  rowsOnScreen() {
    const below = window.innerHeight - Math.max(0, this.body.getBoundingClientRect().top);
    return Math.max(1, Math.ceil(below / MIN_ROW_PX));
  }

  onVisibility(entries) {
    for (const entry of entries) {
      const key = entry.target.dataset.key;
      if (entry.isIntersecting) this.visible.add(key);
      else this.visible.delete(key);
    }
    this.watchVisible();
  }

  /** Ask the stream for the metrics of the running agents on screen (none while hidden). */
  watchVisible() {
    const ids = [];
    if (!document.hidden) {
      for (const key of this.visible) {
        const row = this.rows.get(key);
        const id = row && RUNNING.has(row.item.status) ? row.source.metricsOf(row.item) : null;
        if (id) ids.push(id);
      }
    }
    this.events.watchMetrics(ids, METRICS_EVERY_S);
  }

  onMetrics(samples) {
    const byAgent = new Map(samples.map((m) => [m.agentId, m]));
    for (const row of this.rows.values()) {
      const m = byAgent.get(row.source.metricsOf(row.item));
      if (!m) continue;
      row.metrics = m;
      if (row.tr) this.paintMetrics(row);
    }
  }

  tick() {
    for (const key of this.visible) {
      const row = this.rows.get(key);
      if (row) this.paintClock(row);
    }
  }

  async restart(row) {
    await this.act(row, row.restart, `Restarting ${row.item.id}…`, async () => {
      this.store.put(row.source, await api("POST", row.source.restart(row.item.id)));
      return `Restarted ${row.item.id}.`;
    });
  }

  async stop(row) {
    // Two clicks: the first arms the button for a few seconds.
    if (row.stop.dataset.armed !== "yes") {
      row.stop.dataset.armed = "yes";
      setText(row.stop, "Confirm stop");
      setTimeout(() => {
        row.stop.dataset.armed = "";
        setText(row.stop, "Stop");
      }, CONFIRM_MS);
      return;
    }
    const { source, item } = row;
    await this.act(row, row.stop, `Stopping ${item.id}…`, async () => {
      try {
        await api("DELETE", source.stop(item.id));
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      }
      // An agent stopped is removed; a thread stays listed, stopped: the service says which.
      await this.store.confirm(source, item.id);
      return `Stopped ${item.id}.`;
    });
  }

  async act(row, button, pending, job) {
    button.disabled = true;
    setText(this.notice, pending);
    try {
      setText(this.notice, await job());
    } catch (error) {
      setText(this.notice, describeError(error));
    } finally {
      button.disabled = false;
    }
  }
}

