// CPU and memory of one agent over the last minutes, as two lines on a small hand-drawn SVG.
// The samples come on the event stream: every SAMPLE_S while the agent's page is open, not
// otherwise.
import { bytes, h, setText } from "./dom.js";

const SAMPLE_S = 2;
const WINDOW_MS = 5 * 60 * 1000;
const WIDTH = 600;
const HEIGHT = 150;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

export function chartPanel(agentId, events) {
  const samples = [];
  const plot = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": "CPU and memory over the last five minutes" });
  // The scale follows the highest value shown (at least 5%), so that an idle agent's line is
  // not flat on the floor; the three grid lines say where it stands.
  let top = 100;
  const labels = [0, 0.5, 1].map((share) => {
    const y = HEIGHT - share * (HEIGHT - 4) - 2;
    const label = svg("text", { x: 4, y: Math.max(10, y - 3), class: "axis" });
    plot.append(svg("line", { x1: 0, x2: WIDTH, y1: y, y2: y, class: "grid" }), label);
    return { share, label };
  });
  const cpuLine = svg("polyline", { class: "cpu", points: "" });
  const memLine = svg("polyline", { class: "memory", points: "" });
  // The latest sample of each as a dot: the lines are short for an agent's first seconds.
  const cpuDot = svg("circle", { class: "cpu", r: 3, cx: -10, cy: -10 });
  const memDot = svg("circle", { class: "memory", r: 3, cx: -10, cy: -10 });
  plot.append(cpuLine, memLine, cpuDot, memDot);
  const legend = h("p", { class: "legend", "data-test": "metrics-now" }, "waiting for metrics…");
  const panel = h("section", { class: "panel chart-panel" }, h("h2", {}, "Metrics (last 5 minutes)"), plot, legend);

  function yOf(percent) {
    return HEIGHT - (Math.max(0, Math.min(top, percent)) / top) * (HEIGHT - 4) - 2;
  }

  function draw() {
    const now = Date.now();
    while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
    const highest = Math.max(0, ...samples.map((s) => Math.max(s.cpu, s.mem)));
    top = Math.min(100, Math.max(5, Math.ceil((highest * 1.25) / 5) * 5));
    for (const { share, label } of labels) label.textContent = `${+(top * share).toFixed(1)}%`;
    const xOf = (t) => WIDTH - ((now - t) / WINDOW_MS) * WIDTH;
    cpuLine.setAttribute("points", samples.map((s) => `${xOf(s.t).toFixed(1)},${yOf(s.cpu).toFixed(1)}`).join(" "));
    memLine.setAttribute("points", samples.map((s) => `${xOf(s.t).toFixed(1)},${yOf(s.mem).toFixed(1)}`).join(" "));
    const last = samples[samples.length - 1];
    if (last) {
      for (const [dot, value] of [[cpuDot, last.cpu], [memDot, last.mem]]) {
        dot.setAttribute("cx", (xOf(last.t) - 4).toFixed(1));
        dot.setAttribute("cy", yOf(value).toFixed(1));
      }
    }
  }

  function sample(m) {
    if (m) {
      samples.push({ t: Date.now(), cpu: m.cpu, mem: m.memoryPercent });
      setText(legend, `CPU ${m.cpu.toFixed(1)}% of ${m.cpuLimit} cores · memory ${bytes(m.memory)} of ${bytes(m.memoryLimit)} (${m.memoryPercent.toFixed(1)}%) · ${m.pids} processes`);
    } else {
      setText(legend, "no metrics (is the agent running?)");
    }
    draw();
  }

  const unlisten = events.listen((frame) => {
    if (frame.event === "agent_metrics") sample(frame.data.agents.find((m) => m.agentId === agentId));
  });
  events.watchMetrics([agentId], SAMPLE_S);
  const dispose = () => {
    unlisten();
    events.watchMetrics([]);
  };
  return { element: panel, dispose };
}
