// What the fleet view lists: agents, and threads (a thread runs in an agent of its own, shown
// as a row too). Each kind names its list route, the key of the list in the answer, the events
// that carry one of its items, and what can be done to an item (a kind without `restart` has no
// Restart). A kind whose list route answers 404 is left out.
import { path } from "./api.js";

export const SOURCES = [
  {
    kind: "agent",
    label: "agent",
    list: "/agents",
    key: "agents",
    // Events whose data.agent is a full handle of this kind.
    events: new Set(["agent_started", "agent_ready", "agent_busy", "agent_stopped", "agent_error", "login_required"]),
    itemOf: (frame) => frame.data && frame.data.agent,
    // After this event the item may be gone (DELETE removes it): ask before keeping the row.
    mayBeGone: new Set(["agent_stopped"]),
    get: (id) => path`/agents/${id}`,
    typeOf: (item) => item.type || "",
    // The agent whose metrics the row shows (agent_metrics frames, by agentId).
    metricsOf: (item) => item.id,
    restart: (id) => path`/agents/${id}/restart`,
    stop: (id) => path`/agents/${id}`,
    view: (item) => `#/agents/${encodeURIComponent(item.id)}`,
  },
  {
    kind: "thread",
    label: "thread",
    list: "/threads",
    key: "threads",
    // Every thread event carries the whole thread (data.thread); an ended thread stays listed.
    events: new Set(["thread_event"]),
    itemOf: (frame) => frame.data && frame.data.thread,
    mayBeGone: new Set(),
    get: (id) => path`/threads/${id}`,
    typeOf: (item) => item.agentType || "",
    // Its CPU, memory and page are its agent's (none before its agent is made).
    metricsOf: (item) => item.agentId || null,
    restart: null,
    stop: (id) => path`/threads/${id}`,
    view: (item) => (item.agentId ? `#/agents/${encodeURIComponent(item.agentId)}` : "#/"),
  },
];

// Statuses in which an item has a running container (metrics and uptime mean something); a
// thread's own (running, idle, waiting, blocked) too.
export const RUNNING = new Set(["ready", "busy", "authenticating", "starting", "running", "idle", "waiting", "blocked"]);
// An agent's statuses, then those only a thread has.
export const STATUSES = [
  "pending", "starting", "authenticating", "ready", "busy", "stopping", "stopped", "error",
  "preparing", "running", "idle", "waiting", "blocked", "completed", "failed",
];
export const AGENT_TYPES = ["claude", "codex", "gemini", "aider", "custom"];
