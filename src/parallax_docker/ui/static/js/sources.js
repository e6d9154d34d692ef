// What the fleet view lists. Each kind names its list route, the key of the list in the answer,
// the events that carry one of its items, and what can be done to an item. Threads, once the
// service has a /threads route, are one more entry here; a kind whose list route answers 404 is
// left out, so an entry may come before its route.
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
    metrics: (id) => path`/agents/${id}/metrics`,
    restart: (id) => path`/agents/${id}/restart`,
    stop: (id) => path`/agents/${id}`,
    view: (id) => `#/agents/${encodeURIComponent(id)}`,
  },
];

// Statuses in which an item has a running container (metrics and uptime mean something).
export const RUNNING = new Set(["ready", "busy", "authenticating", "starting"]);
export const STATUSES = ["pending", "starting", "authenticating", "ready", "busy", "stopping", "stopped", "error"];
export const AGENT_TYPES = ["claude", "codex", "gemini", "aider", "custom"];
