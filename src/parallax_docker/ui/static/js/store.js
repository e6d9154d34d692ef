// The fleet as the page knows it: every item of every source, kept current by the event stream.
// A full list is fetched at start and after any possible gap; events that arrive while a list
// is on its way, and the page's own changes made meanwhile (a spawn's answer, a stop), are
// applied again after it, so that an older list never undoes them.
import { api, ApiError } from "./api.js";
import { SOURCES } from "./sources.js";

export function keyOf(source, id) {
  return `${source.kind}:${id}`;
}

export class FleetStore {
  constructor(events) {
    this.items = new Map(); // key -> {source, item}
    this.subscribers = new Set();
    this.loaded = false;
    this.error = null;
    this.inFlight = null;
    this.again = false;
    this.held = null;
    events.listen((frame) => (this.held ? this.held.push(() => this.apply(frame, false)) : this.apply(frame)));
    events.onResync(() => this.sync());
  }

  /** fn(change) with change = {full} | {key} | {key, removed} | {error}. */
  subscribe(fn) {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  emit(change) {
    for (const fn of this.subscribers) fn(change);
  }

  find(kind, id) {
    const entry = this.items.get(`${kind}:${id}`);
    return entry ? entry.item : null;
  }

  sync() {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.held = [];
    this.inFlight = this.fetchAll()
      .then((next) => {
        this.items = next;
        this.loaded = true;
        this.error = null;
        const held = this.held;
        this.held = null;
        for (const again of held) again();
        this.emit({ full: true });
      })
      .catch((error) => {
        this.held = null;
        this.error = error;
        this.emit({ error });
      })
      .finally(() => {
        this.inFlight = null;
        if (this.again) {
          this.again = false;
          this.sync();
        }
      });
    return this.inFlight;
  }

  async fetchAll() {
    const next = new Map();
    const lists = await Promise.all(
      SOURCES.map(async (source) => {
        try {
          return [source, (await api("GET", source.list))[source.key] || []];
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) return [source, []];
          throw error;
        }
      }),
    );
    for (const [source, items] of lists) {
      for (const item of items) next.set(keyOf(source, item.id), { source, item });
    }
    return next;
  }

  apply(frame, notify = true) {
    for (const source of SOURCES) {
      if (!source.events.has(frame.event)) continue;
      const item = source.itemOf(frame);
      if (!item || typeof item.id !== "string") return;
      this.put(source, item, notify);
      if (source.mayBeGone.has(frame.event)) this.confirm(source, item.id);
      return;
    }
  }

  put(source, item, notify = true) {
    if (notify && this.held) this.held.push(() => this.put(source, item, false));
    const key = keyOf(source, item.id);
    this.items.set(key, { source, item });
    if (notify) this.emit({ key });
  }

  remove(source, id) {
    if (this.held) this.held.push(() => this.items.delete(keyOf(source, id)));
    const key = keyOf(source, id);
    if (this.items.delete(key)) this.emit({ key, removed: true });
  }

  /** Keep the item only if the service still has it (a stop event may mean it was removed). */
  async confirm(source, id) {
    try {
      this.put(source, await api("GET", source.get(id)));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) this.remove(source, id);
    }
  }
}
