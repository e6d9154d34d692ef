// One WebSocket on /ws for the whole page: every view listens here (no polling per agent).
// After a (re)connect or an events_dropped notice the views are told to resync, since events
// may have been missed in between. The metrics of the agents a view shows come on it too
// (watchMetrics: agent_metrics frames every few seconds).
import { socket, WS_UNAUTHORIZED } from "./api.js";

const MAX_WATCHED = 500; // the service's bound (api/metrics_watch.py)

export class EventStream {
  constructor({ onStatus = () => {}, onUnauthorized = () => {} } = {}) {
    this.listeners = new Set();
    this.resyncs = new Set();
    this.onStatus = onStatus;
    this.onUnauthorized = onUnauthorized;
    this.ws = null;
    this.retryMs = 500;
    this.stopped = false;
    this.timer = null;
    this.watch = null; // the last watch_metrics frame asked for, sent again on reconnect
  }

  /** fn(frame) for every {event, data, timestamp}; returns the unsubscribe function. */
  listen(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** fn() whenever events may have been lost (connected again, or dropped by the server). */
  onResync(fn) {
    this.resyncs.add(fn);
    return () => this.resyncs.delete(fn);
  }

  /** Metrics of these agents every everyS seconds, as agent_metrics frames; the last call
   * wins, and an empty list stops them. */
  watchMetrics(agentIds, everyS = 5) {
    // Sorted: the same agents in another order are the same watch, not a new frame.
    const ids = [...new Set(agentIds)].sort().slice(0, MAX_WATCHED);
    const watch = JSON.stringify({ type: "watch_metrics", agentIds: ids, everyS });
    if (watch === this.watch) return;
    this.watch = watch;
    if (this.live) this.ws.send(watch);
  }

  start() {
    if (this.ws) return; // open, or opening
    this.stopped = false;
    clearTimeout(this.timer);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  get live() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    const ws = socket("/ws");
    this.ws = ws;
    this.onStatus("connecting");
    ws.addEventListener("open", () => {
      this.retryMs = 500;
      if (this.watch) ws.send(this.watch);
      this.onStatus("live");
      this.resync();
    });
    ws.addEventListener("message", (message) => {
      if (typeof message.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.event === "events_dropped") {
        this.resync();
        return;
      }
      for (const fn of this.listeners) fn(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (event.code === WS_UNAUTHORIZED) {
        this.onStatus("locked");
        this.onUnauthorized();
        return;
      }
      if (this.stopped) return;
      this.onStatus("reconnecting");
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    });
  }

  resync() {
    for (const fn of this.resyncs) fn();
  }
}
