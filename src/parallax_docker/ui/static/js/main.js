// The dashboard's start: refuse to run in a frame, get the token if the service wants one, show
// the view the address names (#/ or #/agents/<id>), and open the one event stream once the
// first list is read.
import { api, ApiError, onUnauthorized, setToken, token } from "./api.js";
import { h, describeError, setText, whenIdle } from "./dom.js";
import { EventStream } from "./events.js";
import { FleetStore } from "./store.js";
import { FleetView } from "./fleet.js";

const main = document.getElementById("main");
const connection = document.getElementById("connection");
const forget = document.getElementById("forget-token");

class App {
  constructor() {
    this.view = null;
    this.locked = false;
    this.events = new EventStream({
      onStatus: (state) => {
        connection.dataset.state = state;
        setText(connection, state);
      },
      onUnauthorized: () => this.askToken(),
    });
    this.store = new FleetStore(this.events);
    onUnauthorized(() => this.askToken());
    window.addEventListener("hashchange", () => this.route());
    forget.addEventListener("click", () => {
      setToken(null);
      this.askToken();
    });
  }

  start() {
    forget.hidden = !token();
    this.load();
    this.route();
  }

  load() {
    // The list is read at once (boot.js has asked for it already) and the first view drawn
    // from it before anything else competes for the machine: the event stream opens once that
    // read is over and the browser is idle (at 300 agents, opening it at once cost the first
    // view a quarter of its time). On opening, the stream asks every listener to resync (the
    // list is read again), so that no event between the two is missed.
    this.store.sync().finally(() =>
      whenIdle(() => {
        if (!this.locked) this.events.start();
      }),
    );
  }

  async route() {
    if (this.locked) return;
    if (this.view) this.view.dispose();
    this.view = null;
    const match = /^#\/agents\/([^/]+)$/.exec(window.location.hash);
    if (match) {
      const { AgentView } = await import("./agent.js");
      this.view = new AgentView(this.store, this.events, main, decodeURIComponent(match[1]));
    } else {
      this.view = new FleetView(this.store, this.events, main);
    }
    this.view.mount();
  }

  askToken() {
    if (this.locked) return;
    this.locked = true;
    this.events.stop();
    if (this.view) this.view.dispose();
    this.view = null;
    const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, "aria-label": "API token", "data-test": "token" });
    const status = h("p", { class: "form-status", "aria-live": "polite" });
    const form = h(
      "form",
      { class: "token" },
      h("h1", {}, "API token"),
      h("p", {}, "This service needs its API token (PARALLAX_API_TOKEN). It is kept in this tab only, and sent only to this service."),
      input,
      h("button", { type: "submit", class: "primary" }, "Use token"),
      status,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setToken(input.value);
      try {
        await api("GET", "/health");
      } catch (error) {
        setToken(null);
        setText(status, error instanceof ApiError && error.status === 401 ? "The service refused this token." : describeError(error));
        return;
      }
      this.locked = false;
      forget.hidden = false;
      this.load();
      this.route();
    });
    main.replaceChildren(form);
    input.focus();
  }
}

if (window.top !== window.self) {
  // Defence in depth behind frame-ancestors 'none': never work inside another site's frame.
  main.replaceChildren(h("p", {}, "The dashboard does not run inside a frame."));
} else {
  new App().start();
}
