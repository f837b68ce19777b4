// Peer: Node.js Socket.IO v4, the same bare fan-out as the Python peers
// (benchmarks/peers/__init__.py). Clients connect with Engine.IO v4 over a WebSocket
// only (`/socket.io/?EIO=4&transport=websocket`); the namespace's CONNECT reply (`40`)
// says a client is registered. `POST /publish`: the body (one JSON frame) is parsed
// once and sent to every client as the event `event` (`42["event",{…}]`), encoded
// once for all by Socket.IO's broadcast. Prints `port=<port>` once it serves.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const server = http.createServer((request, response) => {
  if (request.method !== "POST" || request.url !== "/publish") {
    response.writeHead(404).end();
    return;
  }
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let frame;
    try {
      frame = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      response.writeHead(400).end();
      return;
    }
    io.emit("event", frame);
    response.writeHead(204).end();
  });
});
// The load client keeps its publishing connections open between measurements.
server.keepAliveTimeout = 0;

const io = new Server(server, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
});

process.on("SIGTERM", () => process.exit(0));
server.listen({ port: 0, host: "127.0.0.1", backlog: 1024 }, () => {
  console.log(`port=${server.address().port}`);
});
