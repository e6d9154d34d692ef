"""A small app for an agent to run in preview tests: Node.js, no packages (the echo image has
Node). It serves files, answers ``/headers`` with the request's headers (and tries to set a
cookie and clear the site's data), ``/redirect`` with a redirect to ``/target``, ``POST /echo``
with the body, and echoes every WebSocket frame (an RFC 6455 server in a few lines).
"""

from __future__ import annotations

SERVER_JS = r"""
const http = require("http");
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const root = process.argv[2];
const port = Number(process.argv[3]);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://app");
  if (url.pathname === "/headers") {
    res.setHeader("content-type", "application/json");
    res.setHeader("set-cookie", "stolen=1; Path=/");
    res.setHeader("clear-site-data", '"storage"');
    res.end(JSON.stringify({headers: req.headers, url: req.url}));
    return;
  }
  if (url.pathname === "/redirect") {
    res.statusCode = 302;
    res.setHeader("location", "/target?x=1");
    res.end();
    return;
  }
  if (url.pathname === "/echo" && req.method === "POST") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      res.setHeader("content-type", "application/octet-stream");
      res.end(body);
    });
    return;
  }
  const file = path.join(root, path.normalize(url.pathname === "/" ? "/index.html" : url.pathname));
  fs.readFile(file, (err, data) => {
    if (err) { res.statusCode = 404; res.end("not found"); return; }
    const types = {".html": "text/html", ".js": "text/javascript", ".json": "application/json"};
    res.setHeader("content-type", types[path.extname(file)] || "application/octet-stream");
    res.end(data);
  });
});

function frame(opcode, payload) {
  const length = payload.length;
  let head;
  if (length < 126) head = Buffer.from([0x80 | opcode, length]);
  else if (length < 65536) { head = Buffer.alloc(4); head[0] = 0x80 | opcode; head[1] = 126;
    head.writeUInt16BE(length, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x80 | opcode; head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2); }
  return Buffer.concat([head, payload]);
}

server.on("upgrade", (req, socket) => {
  const accept = crypto.createHash("sha1")
    .update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    .digest("base64");
  const offered = req.headers["sec-websocket-protocol"];
  const chosen = offered ? "\r\nSec-WebSocket-Protocol: " + offered.split(",")[0].trim() : "";
  socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade" +
               "\r\nSec-WebSocket-Accept: " + accept + chosen + "\r\n\r\n");
  let pending = Buffer.alloc(0);
  socket.on("data", (data) => {
    pending = Buffer.concat([pending, data]);
    for (;;) {
      if (pending.length < 2) return;
      const opcode = pending[0] & 0x0f;
      let length = pending[1] & 0x7f;
      let offset = 2;
      if (length === 126) { if (pending.length < 4) return; length = pending.readUInt16BE(2);
        offset = 4; }
      else if (length === 127) { if (pending.length < 10) return;
        length = Number(pending.readBigUInt64BE(2)); offset = 10; }
      if (pending.length < offset + 4 + length) return;
      const mask = pending.subarray(offset, offset + 4);
      const payload = Buffer.from(pending.subarray(offset + 4, offset + 4 + length));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
      pending = pending.subarray(offset + 4 + length);
      if (opcode === 8) { socket.end(frame(8, payload.subarray(0, 2))); return; }
      if (opcode === 9) { socket.write(frame(10, payload)); continue; }
      socket.write(frame(opcode, payload));
    }
  });
  socket.on("error", () => socket.destroy());
});

server.listen(port, "0.0.0.0");
"""

INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>preview</title></head>
<body><pre id="out">waiting</pre><script src="app.js"></script></body></html>
"""

# What a hostile page would try: read the dashboard's token, call the API; and what an app
# needs: its own scripts, its own JSON, its own WebSocket.
APP_JS = """
(async () => {
  const out = {origin: self.origin};
  try { out.token = sessionStorage.getItem("parallax-docker.token"); }
  catch (e) { out.token = "blocked"; }
  try { out.cookie = document.cookie; } catch (e) { out.cookie = "blocked"; }
  for (const url of ["/agents", "/api/agents", "/health"]) {
    try { const r = await fetch(url); out[url] = r.status + ":" + (await r.text()).slice(0, 40); }
    catch (e) { out[url] = "blocked"; }
  }
  try { out.own = (await (await fetch("data.json")).json()).ok; }
  catch (e) { out.own = "failed: " + e; }
  out.ws = await new Promise((resolve) => {
    const ws = new WebSocket(new URL("socket", location.href).href.replace(/^http/, "ws"));
    ws.onopen = () => ws.send("ping from the page");
    ws.onmessage = (m) => { resolve(m.data); ws.close(); };
    ws.onerror = () => resolve("error");
    setTimeout(() => resolve("timeout"), 8000);
  });
  document.getElementById("out").textContent = JSON.stringify(out);
})();
"""
