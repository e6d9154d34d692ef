// A terminal in the agent: xterm.js (vendored, loaded only when a terminal is opened) on
// /ws/agents/{id}/terminal. Keystrokes go out as binary frames, so that typed text can never be
// taken for a control frame; resizes go as {"type": "resize"} text frames (api/routes/ws.py).
import { path, socket } from "./api.js";
import { h, setText } from "./dom.js";

let loaded = null;

function loadXterm() {
  if (!loaded) {
    const css = h("link", {});
    css.rel = "stylesheet";
    css.href = new URL("../vendor/xterm/xterm.css", import.meta.url).href;
    document.head.append(css);
    loaded = Promise.all([import("../vendor/xterm/xterm.mjs"), import("../vendor/addon-fit/addon-fit.mjs")]);
  }
  return loaded;
}

// xterm.js writes its theme and cell sizes into <style> elements, which the page's
// Content-Security-Policy (style-src 'self', no 'unsafe-inline') does not apply. Their text is
// xterm's own, never an agent's: it is copied into constructed style sheets, which apply.
function adoptStyles(root) {
  const sheets = new Map();
  const sync = () => {
    for (const element of root.querySelectorAll("style")) {
      let sheet = sheets.get(element);
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheets.set(element, sheet);
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      }
      sheet.replaceSync(element.textContent);
    }
  };
  const observer = new MutationObserver(sync);
  observer.observe(root, { subtree: true, childList: true, characterData: true });
  sync();
  return () => {
    observer.disconnect();
    const mine = new Set(sheets.values());
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((sheet) => !mine.has(sheet));
  };
}

export function terminalPanel(agentId) {
  const screen = h("div", { class: "terminal", "data-test": "terminal" });
  const state = h("span", { class: "muted", "data-test": "terminal-state" }, "closed");
  const open = h("button", { type: "button", "data-test": "terminal-open" }, "Open a terminal");
  const close = h("button", { type: "button", hidden: true }, "Close");
  const panel = h("section", { class: "panel terminal-panel" }, h("h2", {}, "Terminal ", state, " ", open, close), screen);
  let session = null;

  async function start() {
    open.hidden = true;
    setText(state, "opening");
    const [{ Terminal }, { FitAddon }] = await loadXterm();
    const term = new Terminal({ cursorBlink: true, fontSize: 13, scrollback: 2000, fontFamily: "ui-monospace, monospace" });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    const unadopt = adoptStyles(screen);
    fit.fit();
    const ws = socket(path`/ws/agents/${agentId}/terminal` + `?cols=${term.cols}&rows=${term.rows}`);
    ws.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    ws.addEventListener("open", () => {
      setText(state, "connected");
      close.hidden = false;
      term.focus();
    });
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        term.write(new Uint8Array(event.data));
        return;
      }
      let frame = null;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "exit") setText(state, `the shell exited (${frame.exitCode ?? "?"})`);
      if (frame.type === "error") setText(state, `${frame.code}: ${frame.error}`);
    });
    ws.addEventListener("close", () => {
      if (state.textContent === "connected" || state.textContent === "opening") setText(state, "closed");
      close.hidden = true;
      open.hidden = false;
    });
    const typed = term.onData((data) => ws.readyState === WebSocket.OPEN && ws.send(encoder.encode(data)));
    const resized = term.onResize(({ cols, rows }) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "resize", cols, rows })));
    const refit = () => fit.fit();
    window.addEventListener("resize", refit);
    session = {
      dispose() {
        window.removeEventListener("resize", refit);
        typed.dispose();
        resized.dispose();
        ws.close(1000);
        term.dispose();
        unadopt();
        screen.replaceChildren();
      },
    };
  }

  open.addEventListener("click", () => start().catch((error) => setText(state, String(error))));
  close.addEventListener("click", () => {
    if (session) session.dispose();
    session = null;
    setText(state, "closed");
  });
  return { element: panel, dispose: () => session && session.dispose() };
}
