// Hold many `/api/ws` sockets open and report what they hear (for bench/scale).
//
//   NODE_PATH=<the shared bench's node_modules> node bench/sockets.cjs URL FILE... [--concurrency C]
//
// Opens one socket per line of each FILE (JSON lines with a "token", as bench/seed.py
// writes them), C handshakes at a time, and keeps them open until SIGTERM or stdin closes.
// Prints JSON lines on stdout: {"open": n, "failed": f} once every socket is open or has
// failed, then {"ended": sessionId, "reason", "timestamp", "at": ms since the epoch} for
// each `consult:ended` a user's socket hears, and {"closed": n} for sockets the server
// closed. Pin it to the other core than the server (taskset), as bench/scale does.
'use strict';
const { readFileSync } = require('node:fs');
const WebSocket = require('ws');

const args = process.argv.slice(2);
const url = args.shift();
let concurrency = 100;
const files = [];
while (args.length) {
  const a = args.shift();
  if (a === '--concurrency') concurrency = Number(args.shift());
  else files.push(a);
}
const people = files.flatMap((f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l)),
);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const sockets = [];
let failed = 0;
let closed = 0;
let stopping = false;

function open(person) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/ws`, {
      headers: { authorization: `Bearer ${person.token}` },
      perMessageDeflate: false,
    });
    ws.once('open', () => {
      sockets.push(ws);
      resolve();
    });
    ws.once('error', () => {
      failed++;
      resolve();
    });
    ws.on('close', () => {
      if (!stopping) closed++;
    });
    ws.on('message', (buf) => {
      const frame = JSON.parse(buf.toString());
      if (frame.event === 'consult:ended') {
        const at = performance.timeOrigin + performance.now();
        const { sessionId, reason, timestamp } = frame.data;
        if (person.role !== 'astrologer') say({ ended: sessionId, reason, timestamp, at });
      }
    });
  });
}

async function main() {
  let next = 0;
  const worker = async () => {
    while (next < people.length) await open(people[next++]);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  say({ open: sockets.length, failed });
  setInterval(() => {
    if (closed) say({ closed });
  }, 5000).unref();
}

function stop() {
  stopping = true;
  for (const ws of sockets) ws.terminate();
  // Writes to a pipe are asynchronous: exit only once everything printed has gone out.
  process.stdout.write('', () => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
main();
