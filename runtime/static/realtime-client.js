/**
 * RealtimeClient: the browser client of the realtime server (`/realtime/subscribe`).
 *
 * One dependency-free ES module, no build step. As a module:
 *     import { RealtimeClient } from "/static/realtime-client.js";
 * From a page that does not use modules, load it with
 *     <script type="module" src="/static/realtime-client.js"></script>
 * and use `window.RealtimeClient` once the page has loaded (module scripts run
 * deferred, before DOMContentLoaded). See docs/client.md.
 *
 * Transport: a WebSocket, or Server-Sent Events when WebSocket is missing or keeps
 * failing. The client reconnects with capped, fully jittered exponential backoff,
 * resubscribes everything resuming from the last event it saw, and de-duplicates
 * events by id so that nothing reaches a callback twice.
 */

const DEFAULTS = Object.freeze({
  transport: "auto", // "auto" | "websocket" | "sse"
  batch: true, // connect with ?batch=1: the server may send JSON arrays of frames
  backoff: Object.freeze({ initial: 500, max: 30000 }),
  websocketFailuresBeforeSse: 3,
  connectTimeout: 10000,
  autoConnect: true,
  dedupeWindow: 1000, // how many recent event ids are remembered
  // The id in the event's topic ("posts/42"), whatever the primary key is called.
  recordId: (event) =>
    typeof event.topic === "string" && event.topic.includes("/")
      ? event.topic.slice(event.topic.indexOf("/") + 1)
      : event.record
        ? event.record.id // a server older than the topic field
        : undefined,
});

const STABLE_MS = 5000; // a connection that lasted this long resets the backoff
const DEAD_AFTER_HEARTBEATS = 3; // silence for this many heartbeats: the link is dead
const BACK_OFF_CODES = new Set([1013, 4429]); // the server asked for room: wait longer
const QUIET_CLOSE_CODES = new Set([1000, 1001]); // deliberate closes, not errors
const REFUSED_STATUSES = new Set([400, 403, 413, 422]); // a POST refused for good
const MAX_FILTER_FIELDS = 16;

/** An error with a machine-readable `code` (the server's, or the client's own). */
export class RealtimeError extends Error {
  constructor(code, message, detail = {}) {
    super(message || code);
    this.name = "RealtimeError";
    this.code = code;
    this.pattern = detail.pattern ?? null; // the subscription it concerns, if any
    this.closeCode = detail.closeCode ?? null; // the WebSocket close code, if any
    this.retryAfter = detail.retryAfter ?? null; // seconds, for rate_limited and unavailable
    this.frame = detail.frame ?? null; // the server frame it came from, if any
  }
}

// -- patterns and filters (the same grammar and semantics as the server) ----------

const NAME_RE = /^[A-Za-z0-9_]{1,64}$/;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const GLOB_RE = /^[A-Za-z0-9_*]{1,64}$/;

/** Parse a pattern, or null if the server would call it invalid_pattern. */
function parsePattern(text) {
  if (typeof text !== "string" || !text || text.length > 129) return null;
  const [head, tail, extra] = text.split("/");
  if (extra !== undefined) return null;
  if (head.includes("*")) {
    if (!GLOB_RE.test(head) || (tail !== undefined && tail !== "*")) return null;
    const glob = head.replace(/\*+/g, "*");
    if (glob === "*") return { kind: "all", key: "*" };
    return { kind: "glob", glob, key: `${glob}/*` };
  }
  if (!NAME_RE.test(head)) return null;
  if (tail === undefined || tail === "*") {
    return { kind: "collection", collection: head, key: `${head}/*` };
  }
  if (!ID_RE.test(tail)) return null;
  return { kind: "record", collection: head, id: tail, key: `${head}/${tail}` };
}

/** `*`-only glob matching in linear-ish time (a regex could backtrack badly). */
function globMatch(glob, name) {
  let [g, n, star, mark] = [0, 0, -1, 0];
  while (n < name.length) {
    if (glob[g] === "*") [star, mark] = [g++, n]; // "*" first matches nothing…
    else if (glob[g] === name[n]) [g, n] = [g + 1, n + 1];
    else if (star >= 0) [g, n] = [star + 1, ++mark]; // …then one more character each retry
    else return false;
  }
  while (glob[g] === "*") g++;
  return g === glob.length;
}

/** Whether a collection-level event (a custom event) of `collection` is covered. */
function coversCollection(p, collection) {
  if (p.kind === "all") return true;
  if (p.kind === "collection") return p.collection === collection;
  return p.kind === "glob" && globMatch(p.glob, collection);
}

/** Whether a record event on `collection/recordId` is covered. */
function coversRecord(p, collection, recordId) {
  if (p.kind === "record") return p.collection === collection && p.id === recordId;
  return coversCollection(p, collection);
}

const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

/** The server's filter test: equality on top-level fields; a missing field fails. An
 * expression (a string) was the server's to judge: whatever it sends has passed. */
function filterMatches(filter, record) {
  if (!filter || typeof filter === "string") return true;
  if (!record || typeof record !== "object") return false;
  return Object.keys(filter).every((k) => hasOwn(record, k) && record[k] === filter[k]);
}

/** A copy of a filter, null when empty, or a RealtimeError when the server would refuse it.
 * An expression (a string) is the server's to check: only a blank one is no filter. */
function normalizeFilter(filter) {
  if (filter == null) return null;
  if (typeof filter === "string") return filter.trim() ? filter : null;
  const keys = typeof filter === "object" && !Array.isArray(filter) ? Object.keys(filter) : null;
  const scalar = (v) => v === null || ["string", "number", "boolean"].includes(typeof v);
  if (!keys || keys.length > MAX_FILTER_FIELDS || !keys.every((k) => scalar(filter[k]))) {
    return new RealtimeError(
      "bad_request",
      `filter must be an expression or an object of at most ${MAX_FILTER_FIELDS} string, number, boolean or null fields`,
    );
  }
  return keys.length ? { ...filter } : null;
}

/** The foreign keys to expand (an array, or "author,project"), sorted and unique. */
function normalizeExpand(expand) {
  const names = typeof expand === "string" ? expand.split(",") : Array.isArray(expand) ? expand : [];
  return [...new Set(names.filter((n) => typeof n === "string").map((n) => n.trim()).filter(Boolean))].sort();
}

const filterKey = (filter) => {
  if (!filter) return "";
  if (typeof filter === "string") return JSON.stringify(filter);
  return JSON.stringify(Object.keys(filter).sort().map((k) => [k, filter[k]]));
};

/** Whether `entry` cannot share `topic`'s server subscription: the server keeps one
 * filter per pattern, and an expression cannot be repeated here to route by. */
function clashes(topic, entry) {
  const expression = (e) => typeof e.filter === "string";
  return [...topic.entries].some(
    (e) => e.filterKey !== entry.filterKey && (expression(e) || expression(entry)),
  );
}

// -- small helpers ----------------------------------------------------------------

/** Remembers the last `limit` ids; a Set keeps insertion order, so eviction is FIFO. */
class RecentIds {
  constructor(limit) {
    this.limit = Math.max(1, limit);
    this.ids = new Set();
  }
  /** False if `id` was seen already. */
  add(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

/** Surface an exception thrown by application code without breaking the client. */
function reportLater(err) {
  if (typeof reportError === "function") reportError(err);
  else setTimeout(() => { throw err; }); // prettier-ignore
}

function safeCall(fn, ...args) {
  if (typeof fn !== "function") return;
  try {
    fn(...args);
  } catch (err) {
    reportLater(err);
  }
}

/** The http(s) URL of the endpoint; ws(s) URLs and relative paths are accepted. */
function resolveUrl(url) {
  const base = typeof location !== "undefined" ? location.href : undefined;
  const resolved = new URL(url == null ? "/realtime/subscribe" : String(url), base);
  if (resolved.protocol === "ws:") resolved.protocol = "http:";
  if (resolved.protocol === "wss:") resolved.protocol = "https:";
  return resolved;
}

/** The frames of a POST reply: `{"results": [frame, …]}` (a bare array is accepted too). */
function replyFrames(json) {
  const frames = Array.isArray(json) ? json : json && json.results;
  return Array.isArray(frames) ? frames.filter((f) => f && typeof f === "object") : [];
}

function snapshotFor(entry, snapshot) {
  if (!entry.filter || !snapshot || !Array.isArray(snapshot.records)) return snapshot;
  const records = snapshot.records.filter((r) => filterMatches(entry.filter, r));
  if (entry.held) {
    entry.held.clear();
    for (const record of records) entry.held.add(String(record[snapshot.key || "id"]));
  }
  return { ...snapshot, records };
}

/** An update, as the create or delete of a record entering or leaving a filter. */
function movedFrame(frame, action) {
  const { changed, ...rest } = frame;
  return { ...rest, action, reason: "filter" };
}

// -- subscriptions ----------------------------------------------------------------

/** One subscribe() call: a callback, its options and its `ready` promise. */
class Entry {
  constructor(callback, options, filter) {
    this.callback = callback;
    this.filter = filter;
    this.filterKey = filterKey(filter);
    this.snapshot = Boolean(options.snapshot);
    this.expand = normalizeExpand(options.expand);
    this.onSnapshot = options.onSnapshot;
    this.onResync = options.onResync;
    this.onError = options.onError;
    this.onPresence = options.onPresence;
    // An equality filter may have to be applied here (see Topic.serverFilter): the
    // records this caller was given, so that one edited out of its filter can leave.
    this.held = filter && typeof filter === "object" ? new Set() : null;
    this.topic = null;
    this.settled = false;
    this.ready = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // With an onError handler the app handles failures there: no unhandled rejection.
    if (typeof this.onError === "function") this.ready.catch(() => {});
  }
}

/** One server subscription (one pattern), shared by every Entry on that pattern. */
class Topic {
  constructor(pattern, parsed) {
    this.pattern = pattern;
    this.parsed = parsed;
    this.entries = new Set();
    this.live = false; // subscribed on the current connection
    this.everLive = false; // was subscribed on some connection: a resubscribe resumes
    this.position = null; // the event id to resume from
    this.reply = null; // the latest `subscribed` frame
    this.awaitingSnapshot = false;
  }
  wantsSnapshot() {
    return [...this.entries].some((e) => e.snapshot);
  }
  /** The entries' common filter; none when they differ (routing then filters each). */
  serverFilter() {
    const [first, ...rest] = this.entries;
    if (!first || rest.some((e) => e.filterKey !== first.filterKey)) return null;
    return first.filter;
  }
  /** What the server is asked to expand: the union of the entries' (as the server
   * gives a connection the union of its subscriptions'). */
  serverExpand() {
    return normalizeExpand([...this.entries].flatMap((e) => e.expand));
  }
  /** What a subscribe says of this topic's records: a change asks again. */
  serverKey() {
    return `${filterKey(this.serverFilter())}|${this.serverExpand().join(",")}`;
  }
}

// -- the client -------------------------------------------------------------------

export class RealtimeClient {
  constructor(url, options) {
    if (url && typeof url === "object" && !(url instanceof URL) && options === undefined) {
      [url, options] = [undefined, url]; // new RealtimeClient({…})
    }
    options = options || {};
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...options.backoff } };
    this.url = resolveUrl(url);
    this.state = "disconnected";
    this.transport = null;
    this.connectionId = null;
    this.user = null;
    this.lastEventId = null;
    this._listeners = new Map();
    this._topics = new Map(); // pattern key -> Topic
    this._requests = new Map(); // request id -> the pending subscribe/unsubscribe
    this._asks = new Map(); // request id -> an emit or publish awaiting its answer
    this._seen = new RecentIds(this.options.dedupeWindow);
    this._seq = 0;
    this._epoch = 0; // bumped per connection attempt: late async callbacks check it
    this._attempt = 0; // failed attempts since the last stable connection
    this._wsFailures = 0; // WebSocket attempts in a row that never got `connected`
    this._closed = true;
    this._conn = null;
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._livenessTimer = null;
    this._wake = (event) => this._onWake(event);
    if (this.options.autoConnect) this.connect();
  }

  // -- public API ---------------------------------------------------------------

  /** Listen to "state", "connected", "error", "custom" or "event"; returns an off function. */
  on(name, callback) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(callback);
    return () => this.off(name, callback);
  }

  off(name, callback) {
    const set = this._listeners.get(name);
    if (set) set.delete(callback);
  }

  /** Connect; while waiting to reconnect, reconnect now. */
  connect() {
    if (!this._closed) {
      if (!this._conn && this._reconnectTimer) this._reconnectNow();
      return;
    }
    this._closed = false;
    this._attempt = 0;
    this._listenToPage(true);
    // Open after the current task, so that its subscribe() calls ride on the first
    // request and its on("state") listeners hear "connecting".
    this.state = "connecting";
    Promise.resolve().then(() => {
      if (this._closed || this._conn) return;
      this._emit("state", "connecting");
      this._open();
    });
  }

  /** Disconnect for good (until connect()); subscriptions are kept for a later connect(). */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._epoch++;
    this._listenToPage(false);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (this._conn) this._teardown(this._conn, 1000);
    this._forgetConnection();
    this.transport = null;
    this._setState("disconnected");
  }

  /**
   * Subscribe `callback` to events matching `pattern`. Returns an unsubscribe function
   * whose `ready` promise resolves with the server's `subscribed` reply or rejects
   * with a RealtimeError (`code` "forbidden", "invalid_pattern", …).
   */
  subscribe(pattern, callback, options = {}) {
    if (typeof callback !== "function") throw new TypeError("subscribe: callback must be a function");
    const filter = normalizeFilter(options.filter);
    const entry = new Entry(callback, options, filter instanceof RealtimeError ? null : filter);
    const unsubscribe = () => this._removeEntry(entry);
    unsubscribe.ready = entry.ready;
    const parsed = parsePattern(pattern);
    let problem = filter instanceof RealtimeError ? filter : null;
    if (!parsed) problem = new RealtimeError("invalid_pattern", `invalid pattern ${JSON.stringify(pattern)}`);
    else if (entry.snapshot && (parsed.kind === "all" || parsed.kind === "glob")) {
      problem = new RealtimeError("bad_request", "snapshot needs a collection or record pattern");
    }
    if (problem) {
      problem.pattern = typeof pattern === "string" ? pattern : null;
      // Later, so that the caller can attach handlers to `ready` first.
      Promise.resolve().then(() => this._fail(entry, problem));
      return unsubscribe;
    }
    let topic = this._topics.get(parsed.key);
    if (topic && clashes(topic, entry)) {
      const clash = new RealtimeError(
        "bad_request",
        "a filter expression cannot share a pattern with a different filter on one client",
      );
      clash.pattern = pattern;
      Promise.resolve().then(() => this._fail(entry, clash));
      return unsubscribe;
    }
    const fresh = !topic;
    if (fresh) {
      topic = new Topic(pattern, parsed);
      this._topics.set(parsed.key, topic);
    }
    const before = topic.serverKey();
    topic.entries.add(entry);
    entry.topic = topic;
    const pending = this._pendingFor(topic);
    if (!topic.live && !pending) this._sendSubscribe(topic, topic.everLive);
    else if (entry.snapshot) this._sendSubscribe(topic, false, true);
    else if (topic.serverKey() !== before) this._sendSubscribe(topic, false, false);
    else if (topic.live && !pending) {
      const { snapshot, ...reply } = topic.reply; // another entry's snapshot is not this one's
      this._settle(entry, reply);
    }
    // Otherwise it settles with the reply on its way, or the next connection's.
    return unsubscribe;
  }

  /**
   * Keep the DOM element `list` showing the records of `pattern` (a collection or one
   * record), live: a snapshot first (and again after every reconnect), then each
   * create, update and delete applied in place to that record's element alone. See
   * docs/client.md "Live lists". Returns a LiveList (`records`, `ready`, `close()`).
   */
  liveList(pattern, options = {}) {
    return new LiveList(this, pattern, options);
  }

  /**
   * Send a client event to the server's handler (`@realtime.on(name)`). Resolves with
   * the handler's answer; rejects with a RealtimeError: the server's ("bad_request",
   * "forbidden", "internal_error", …), "timeout", or "connection_lost" when the
   * connection went before the answer came (the handler may or may not have run).
   * Sent at once when connected, else as soon as a connection is.
   */
  emit(name, data = null, { timeout = 10000 } = {}) {
    return this._ask({ type: "emit", name, data }, timeout);
  }

  /** Publish a custom event to a channel's subscribers (if its write rule lets this
   * user); resolves with `{event_id}`, rejects as `emit` does. */
  publish(channel, name, data = null, { timeout = 10000 } = {}) {
    return this._ask({ type: "publish", channel, name, data }, timeout);
  }

  _ask(message, timeout) {
    return new Promise((resolve, reject) => {
      const id = `a${++this._seq}`;
      const ask = { id, message, resolve, reject, sentOn: null, timer: null };
      ask.timer = setTimeout(() => {
        this._asks.delete(id);
        reject(new RealtimeError("timeout", `no answer to ${message.type} ${JSON.stringify(message.name)}`));
      }, timeout);
      this._asks.set(id, ask);
      if (this._conn && this._conn.connected) this._sendAsk(ask);
    });
  }

  _sendAsk(ask) {
    const conn = this._conn;
    ask.sentOn = conn;
    const { type, ...item } = ask.message;
    if (conn.kind === "websocket") this._send({ type, id: ask.id, ...item });
    else this._queuePost(type, { id: ask.id, ...item });
  }

  _answer(frame) {
    const ask = this._asks.get(String(frame.id));
    if (!ask) return false;
    this._asks.delete(ask.id);
    clearTimeout(ask.timer);
    if (frame.type === "ack") ask.resolve(frame.data);
    else ask.reject(errorFrom(frame, null));
    return true;
  }

  // -- connection lifecycle -------------------------------------------------------

  _pickTransport() {
    const hasWs = typeof WebSocket !== "undefined";
    const hasSse = typeof EventSource !== "undefined" && typeof fetch !== "undefined";
    const wanted = this.options.transport;
    if (wanted === "websocket") return hasWs ? "websocket" : null;
    if (wanted === "sse") return hasSse ? "sse" : null;
    const wsFailing = this._wsFailures >= this.options.websocketFailuresBeforeSse;
    if (hasWs && !(wsFailing && hasSse)) return "websocket";
    return hasSse ? "sse" : null;
  }

  _open() {
    this._reconnectTimer = null;
    if (this._closed || this._conn) return;
    const kind = this._pickTransport();
    if (!kind) {
      this._emitError(new RealtimeError("unsupported", `no usable transport for "${this.options.transport}"`));
      this.close();
      return;
    }
    const conn = {
      kind,
      connected: false,
      connectedAt: 0,
      lastReceived: Date.now(),
      heartbeatMs: 0,
      ws: null,
      es: null,
      post: null, // SSE: the POST being gathered
      viaGet: new Set(), // SSE: topics subscribed by the GET's query
      getQueue: [], // SSE: those topics whose reply has not come yet, in URL order
      getSince: null,
    };
    this._epoch++;
    this._conn = conn;
    this.transport = kind;
    this._setState("connecting");
    this._connectTimer = setTimeout(() => {
      if (this._conn === conn && !conn.connected) this._down(null, "connect timeout", "timeout");
    }, this.options.connectTimeout);
    try {
      if (kind === "websocket") this._openWebSocket(conn);
      else this._openSse(conn);
    } catch (err) {
      this._down(null, String(err && err.message ? err.message : err));
    }
  }

  _wsUrl() {
    const url = new URL(this.url);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.options.batch) url.searchParams.set("batch", "1");
    return url.href;
  }

  _openWebSocket(conn) {
    const ws = new WebSocket(this._wsUrl());
    conn.ws = ws;
    ws.onmessage = (e) => {
      if (this._conn !== conn) return;
      if (typeof e.data === "string") this._onText(e.data);
      else this._emitError(new RealtimeError("bad_frame", "the server sent a binary message"));
    };
    ws.onclose = (e) => {
      if (this._conn === conn) this._down(e.code, e.reason || "");
    };
    ws.onerror = () => {}; // a close event always follows, and says more
  }

  _openSse(conn) {
    // Topics with a filter, an expand or a snapshot cannot be said in the query: they
    // are POSTed once `connected` gives the connection id.
    const viaGet = [...this._topics.values()].filter(
      (t) => !t.wantsSnapshot() && !t.serverFilter() && !t.serverExpand().length,
    );
    const url = new URL(this.url);
    for (const topic of viaGet) url.searchParams.append("pattern", topic.pattern);
    conn.getSince = viaGet.length ? this.lastEventId : null;
    if (conn.getSince) url.searchParams.set("last_event_id", conn.getSince);
    conn.viaGet = new Set(viaGet);
    conn.getQueue = viaGet.slice();
    const es = new EventSource(url.href);
    conn.es = es;
    const onMessage = (e) => {
      if (this._conn === conn) this._onText(e.data);
    };
    const types = ["connected", "event", "subscribed", "unsubscribed", "close", "ping", "message"];
    for (const type of types) {
      es.addEventListener(type, onMessage);
    }
    // "error" is both the stream's failure and the name of `error` frames.
    es.addEventListener("error", (e) => {
      if (this._conn !== conn) return;
      if (typeof e.data === "string") return this._onText(e.data);
      // The browser would retry with the URL it was first given, which misses the
      // subscriptions changed by POST since: reconnect ourselves with the current set.
      const refused = es.readyState === 2; // CLOSED: an HTTP error or a wrong content type
      this._down(null, refused ? "the event stream was refused" : "the event stream was interrupted");
    });
  }

  _onConnected(frame) {
    const conn = this._conn;
    if (conn.connected) return;
    conn.connected = true;
    conn.connectedAt = Date.now();
    clearTimeout(this._connectTimer);
    this.connectionId = frame.connection_id ?? null;
    // SSE: the stream's secret, which its POSTs carry (the id may be known to others).
    conn.streamKey = frame.stream_key ?? null;
    this.user = frame.user ?? null;
    conn.heartbeatMs = Number(frame.heartbeat) > 0 ? Number(frame.heartbeat) * 1000 : 0;
    if (conn.kind === "websocket") {
      this._wsFailures = 0;
      // Compares timestamps, so throttled timers in background tabs only delay the check.
      if (conn.heartbeatMs) this._livenessTimer = setInterval(() => this._checkLiveness(), conn.heartbeatMs);
    } else if (this.options.transport === "auto" && typeof WebSocket !== "undefined") {
      this._probeWebSocket(conn);
    }
    // Resubscribe before telling listeners, whose subscribe() calls then go out once.
    for (const topic of this._topics.values()) {
      if (!conn.viaGet.has(topic)) this._sendSubscribe(topic, topic.everLive);
    }
    for (const topic of conn.viaGet) {
      if (this._topics.get(topic.parsed.key) !== topic) this._queuePost("unsubscribe", topic);
    }
    for (const ask of this._asks.values()) if (!ask.sentOn) this._sendAsk(ask);
    this._setState("connected");
    this._emit("connected", frame);
  }

  /** The transport ended: clean up, tell, and schedule a reconnect. */
  _down(closeCode, reason, errorCode) {
    const conn = this._conn;
    if (!conn) return;
    this._teardown(conn);
    const wasConnected = conn.connected;
    if (conn.kind === "websocket" && !wasConnected) this._wsFailures++;
    // SSE failing too means the server is unreachable, not that WebSocket is broken.
    if (conn.kind === "sse" && !wasConnected) this._wsFailures = 0;
    if (wasConnected && Date.now() - conn.connectedAt >= STABLE_MS) this._attempt = 0;
    if (BACK_OFF_CODES.has(closeCode)) this._attempt = Math.max(this._attempt, 3);
    this._forgetConnection();
    this.transport = null;
    if (closeCode === 4401) {
      this._emitError(
        new RealtimeError("session_ended", "the session ended; reconnecting without it", { closeCode }),
      );
    } else if (!QUIET_CLOSE_CODES.has(closeCode)) {
      const code = errorCode || (wasConnected ? "connection_lost" : "connect_failed");
      const what = reason || (wasConnected ? "the connection was lost" : "could not connect");
      const detail = closeCode == null ? "" : ` (close code ${closeCode})`;
      this._emitError(new RealtimeError(code, what + detail, { closeCode }));
    }
    this._setState("disconnected");
    this._scheduleReconnect();
  }

  _teardown(conn, closeCode) {
    this._conn = null;
    clearTimeout(this._connectTimer);
    clearInterval(this._livenessTimer);
    if (conn.ws) {
      conn.ws.onmessage = conn.ws.onclose = null;
      conn.ws.close(closeCode);
    }
    if (conn.es) conn.es.close();
  }

  _forgetConnection() {
    this.connectionId = null;
    this._requests.clear();
    // Asked on a connection that is gone: the answer cannot come. At most once: the
    // caller decides whether to ask again.
    for (const ask of [...this._asks.values()]) {
      if (!ask.sentOn) continue;
      this._asks.delete(ask.id);
      clearTimeout(ask.timer);
      ask.reject(new RealtimeError("connection_lost", "the connection went before the answer came"));
    }
    for (const topic of this._topics.values()) {
      topic.live = false;
      topic.awaitingSnapshot = false;
    }
  }

  _scheduleReconnect() {
    if (this._closed) return;
    // Full jitter: a random delay up to the capped exponential, so that clients cut
    // off together do not come back together.
    const { initial, max } = this.options.backoff;
    const delay = Math.random() * Math.min(max, initial * 2 ** this._attempt);
    this._attempt = Math.min(this._attempt + 1, 30);
    this._reconnectTimer = setTimeout(() => this._open(), delay);
  }

  /**
   * On an SSE fallback, try one WebSocket: the failures that led here may have been a
   * server restart rather than a network that breaks WebSocket. If it gets `connected`,
   * switch over; resuming and de-duplication make the switch lossless.
   */
  _probeWebSocket(conn) {
    let ws;
    try {
      ws = new WebSocket(this._wsUrl());
    } catch {
      return;
    }
    let timer = null;
    const finish = (works) => {
      clearTimeout(timer);
      ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1000);
      if (!works || this._conn !== conn || this._closed) return;
      this._wsFailures = 0;
      this._teardown(conn);
      this._forgetConnection();
      this._open();
    };
    ws.onmessage = () => finish(true); // the server's `connected`
    ws.onclose = ws.onerror = () => finish(false);
    timer = setTimeout(() => finish(false), this.options.connectTimeout);
  }

  _checkLiveness() {
    const conn = this._conn;
    if (!conn) return;
    if (conn.kind === "sse") {
      // `: ping` comments are invisible to EventSource: an open stream counts as alive.
      if (conn.es.readyState === 2) this._down(null, "the event stream closed");
      return;
    }
    const silentFor = Date.now() - conn.lastReceived;
    if (conn.connected && conn.heartbeatMs && silentFor > DEAD_AFTER_HEARTBEATS * conn.heartbeatMs) {
      this._down(null, `nothing from the server for ${Math.round(silentFor / 1000)}s`, "timeout");
    }
  }

  /** Back online, or the tab visible again: check at once instead of waiting. */
  _onWake(event) {
    if (this._closed) return;
    if (event.type === "visibilitychange" && document.visibilityState !== "visible") return;
    if (this._conn) return this._checkLiveness();
    this._reconnectNow();
  }

  _reconnectNow() {
    clearTimeout(this._reconnectTimer); // skip the backoff wait
    this._open();
  }

  _listenToPage(on) {
    const method = on ? "addEventListener" : "removeEventListener";
    if (typeof window !== "undefined" && window[method]) window[method]("online", this._wake);
    if (typeof document !== "undefined" && document[method]) document[method]("visibilitychange", this._wake);
  }

  // -- incoming frames ------------------------------------------------------------

  _onText(text) {
    this._conn.lastReceived = Date.now();
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      this._emitError(new RealtimeError("bad_frame", `the server sent invalid JSON: ${String(text).slice(0, 100)}`));
      return;
    }
    for (const frame of Array.isArray(data) ? data : [data]) {
      if (!this._conn) return; // a frame's handler may have ended the connection
      if (frame && typeof frame === "object" && typeof frame.type === "string") this._onFrame(frame);
      else this._emitError(new RealtimeError("bad_frame", "the server sent a frame without a type", { frame }));
    }
  }

  _onFrame(frame) {
    switch (frame.type) {
      case "connected":
        return this._onConnected(frame);
      case "event":
        return this._onEvent(frame);
      case "ack":
        return void this._answer(frame);
      case "subscribed":
      case "unsubscribed":
      case "error":
        if (frame.id != null && this._answer(frame)) return;
        return this._onReply(frame);
      case "ping":
        return this._send({ type: "pong" });
      case "close": // SSE has no close codes: the server says why before ending a stream
        return this._down(frame.code ?? null, frame.reason || "the server ended the stream");
      default:
        return; // "pong", and frame types newer than this client
    }
  }

  _onEvent(frame) {
    const id = frame.id;
    if (id != null) {
      if (!this._seen.add(id)) return; // replayed after a reconnect: delivered already
      this.lastEventId = id;
      // Every event on this connection comes after what the live topics have had.
      for (const topic of this._topics.values()) if (topic.live) topic.position = id;
    }
    this._attempt = 0; // events flow: the connection is good
    this._emit("event", frame);
    if (frame.action === "custom" && frame.collection == null) return this._emit("custom", frame);
    const calls = new Map(); // one call per callback, however many patterns match
    for (const topic of this._topics.values()) {
      for (const [entry, own] of this._routeTo(topic, frame)) {
        if (!calls.has(entry.callback)) calls.set(entry.callback, own);
      }
    }
    for (const [callback, own] of calls) safeCall(callback, own);
  }

  /** The entries of `topic` that should receive `frame`, each with the frame it gets. */
  _routeTo(topic, frame) {
    // Custom events, joins and leaves carry no record: they are the collection's (or
    // channel's), and filters do not apply to them (as on the server).
    const collectionLevel = !("record" in frame);
    if (collectionLevel ? !coversCollection(topic.parsed, frame.collection) : !this._coversRecord(topic, frame)) {
      return [];
    }
    const local = topic.serverFilter() === null; // the server sent it unfiltered
    const routed = [];
    for (const entry of topic.entries) {
      if (entry.snapshot && topic.awaitingSnapshot) continue; // its snapshot includes it
      const own = collectionLevel ? frame : this._forEntry(entry, frame, local);
      if (own) routed.push([entry, own]);
    }
    return routed;
  }

  /** A record event as `entry` gets it, or null. Where the server could not apply the
   * entry's filter (`local`), an update that takes a record the entry was given out of
   * its filter is a delete, one that brings a record into it a create, as the server
   * sends them (`reason: "filter"`). */
  _forEntry(entry, frame, local) {
    const passes = filterMatches(entry.filter, frame.record);
    if (!entry.held) return passes ? frame : null;
    const key = String(this.options.recordId(frame));
    const had = entry.held.has(key);
    let own = passes ? frame : null;
    if (local && frame.action === "update") {
      if (passes && !had) own = movedFrame(frame, "create");
      else if (!passes && had) own = movedFrame(frame, "delete");
    }
    if (own && own.action === "delete") entry.held.delete(key);
    else if (own) entry.held.add(key);
    return own;
  }

  _coversRecord(topic, frame) {
    if (topic.parsed.kind !== "record") return coversCollection(topic.parsed, frame.collection);
    const id = this.options.recordId(frame);
    return coversRecord(topic.parsed, frame.collection, id == null ? null : String(id));
  }

  _onReply(frame, viaPost = false) {
    const req = this._takeRequest(frame, viaPost);
    if (!req) {
      if (frame.type === "error") this._emitError(errorFrom(frame, null));
      return;
    }
    if (frame.type === "error") this._onRequestError(req, frame);
    else if (frame.type === "subscribed") this._onSubscribed(req, frame);
  }

  /** The pending request a reply answers: by our request id, else by pattern. */
  _takeRequest(frame, viaPost) {
    let key = frame.id != null && this._requests.has(String(frame.id)) ? String(frame.id) : null;
    if (key === null && !viaPost && frame.type !== "unsubscribed" && this._conn.getQueue.length) {
      return this._takeGetReply(frame);
    }
    if (key === null && frame.pattern != null) {
      for (const [k, r] of this._requests) if (r.type === "subscribe" && r.pattern === frame.pattern) key = k;
    }
    const req = key === null ? undefined : this._requests.get(key);
    this._requests.delete(key);
    return req;
  }

  /** SSE: the GET's replies come in the order of its patterns (error frames name none). */
  _takeGetReply(frame) {
    const queue = this._conn.getQueue;
    const i = Math.max(0, queue.findIndex((t) => t.pattern === frame.pattern));
    const [topic] = queue.splice(i, 1);
    return { type: "subscribe", topic, pattern: topic.pattern, resume: topic.everLive, since: this._conn.getSince };
  }

  _onSubscribed(req, frame) {
    const topic = req.topic;
    if (this._topics.get(topic.parsed.key) !== topic) return; // unsubscribed meanwhile
    const wasLive = topic.live;
    topic.live = topic.everLive = true;
    topic.reply = frame;
    const snapshot = frame.snapshot || null;
    if (snapshot) topic.awaitingSnapshot = false;
    if (snapshot) topic.position = snapshot.position ?? topic.position;
    else if (frame.recovered && req.since) topic.position = req.since; // the replay follows
    else if (!wasLive) topic.position = this.lastEventId; // older is safe: replays dedupe
    for (const entry of [...topic.entries]) {
      // Who is here now, on a topic that tracks presence (joins and leaves follow).
      if (Array.isArray(frame.presence)) safeCall(entry.onPresence, frame.presence);
      const hadData = entry.settled;
      if (entry.snapshot && snapshot) {
        const own = snapshotFor(entry, snapshot);
        this._settle(entry, own === snapshot ? frame : { ...frame, snapshot: own });
        safeCall(entry.onSnapshot, own);
      } else if (entry.snapshot && topic.awaitingSnapshot) {
        continue; // its snapshot is in another reply
      } else if (!hadData) {
        this._settle(entry, frame);
      } else if (req.resume && !frame.recovered) {
        // Events may have been missed while disconnected and history does not cover
        // them (or there was no event id to resume from): the app should refetch.
        safeCall(entry.onResync, frame);
      }
    }
  }

  _onRequestError(req, frame) {
    const topic = req.topic;
    const err = errorFrom(frame, topic ? topic.pattern : null);
    if (frame.code === "rate_limited" || frame.code === "unavailable") {
      return this._retryLater(req, frame.retry_after); // transient: ask again
    }
    if (req.type !== "subscribe" || this._topics.get(topic.parsed.key) !== topic) {
      return this._emitError(err);
    }
    if (req.snapshot) topic.awaitingSnapshot = false;
    for (const entry of [...topic.entries]) {
      if (entry.settled) {
        // Subscribed before (e.g. a resubscription after the session ended): keep it,
        // the next connection tries again.
        if (typeof entry.onError === "function") safeCall(entry.onError, err);
        else this._emitError(err);
      } else {
        topic.entries.delete(entry);
        entry.topic = null;
        this._fail(entry, err);
      }
    }
    if (!topic.entries.size) {
      this._topics.delete(topic.parsed.key);
      if (topic.live) this._sendUnsubscribe(topic);
    }
  }

  /** rate_limited and unavailable are transient: send the same request again when the
   * server says. */
  _retryLater(req, retryAfter) {
    const epoch = this._epoch;
    const delay = Math.max(0.1, Number(retryAfter) || 1) * 1000;
    setTimeout(() => {
      if (this._epoch !== epoch || !this._conn || !this._conn.connected) return; // resubscribed anyway
      const current = this._topics.get(req.topic.parsed.key);
      if (req.type === "subscribe" && current === req.topic) {
        this._sendSubscribe(req.topic, req.resume, req.snapshot);
      } else if (req.type === "unsubscribe" && current === undefined) {
        this._sendUnsubscribe(req.topic);
      }
    }, delay);
  }

  _settle(entry, frame) {
    if (entry.settled) return;
    entry.settled = true;
    entry.resolve(frame);
  }

  _fail(entry, err) {
    if (entry.settled) return;
    entry.settled = true;
    entry.reject(err);
    safeCall(entry.onError, err);
  }

  _removeEntry(entry) {
    const topic = entry.topic;
    if (!topic) return;
    const before = topic.serverKey();
    topic.entries.delete(entry);
    entry.topic = null;
    if (!topic.entries.size) {
      this._topics.delete(topic.parsed.key);
      this._sendUnsubscribe(topic);
    } else if (topic.serverKey() !== before) {
      this._sendSubscribe(topic, false, false); // the remaining entries share a filter now
    }
  }

  // -- outgoing requests ------------------------------------------------------------

  /** Whether a reply about `topic` is on its way (to a request, or to the SSE GET). */
  _pendingFor(topic) {
    if (this._conn && this._conn.getQueue.includes(topic)) return true;
    for (const req of this._requests.values()) if (req.topic === topic) return true;
    return false;
  }

  /** Ask for `topic` on the current connection; without one, `connected` sends it. */
  _sendSubscribe(topic, resume, snapshot = topic.wantsSnapshot()) {
    const conn = this._conn;
    if (!conn || !conn.connected) return;
    const id = `r${++this._seq}`;
    const msg = { type: "subscribe", id, pattern: topic.pattern };
    const filter = topic.serverFilter();
    if (filter) msg.filter = filter;
    const expand = topic.serverExpand();
    if (expand.length) msg.expand = expand;
    if (snapshot) {
      msg.snapshot = true; // the snapshot replaces resuming: it is the state now
      topic.awaitingSnapshot = true;
    } else if (resume && topic.position) {
      msg.since = topic.position;
    }
    const since = msg.since ?? null;
    this._requests.set(id, { type: "subscribe", topic, pattern: topic.pattern, resume, snapshot, since });
    if (conn.kind === "websocket") return this._send(msg);
    const { type, ...item } = msg; // the POST's items are the WebSocket's frames less "type"
    this._queuePost("subscribe", item);
  }

  _sendUnsubscribe(topic) {
    const conn = this._conn;
    if (!conn || !conn.connected) return; // nothing to undo: the next connection omits it
    if (conn.kind === "sse") return this._queuePost("unsubscribe", topic);
    const id = `r${++this._seq}`;
    this._requests.set(id, { type: "unsubscribe", topic, pattern: topic.pattern });
    this._send({ type: "unsubscribe", id, pattern: topic.pattern });
  }

  _send(frame) {
    const conn = this._conn;
    // If the socket is closing, the reconnect resubscribes: nothing is lost.
    if (conn && conn.ws && conn.ws.readyState === 1) conn.ws.send(JSON.stringify(frame));
  }

  /** SSE: gather the changes of one task into one POST (unsubscribes as topics). */
  _queuePost(kind, item) {
    const conn = this._conn;
    if (!conn.post) {
      conn.post = { subscribe: [], unsubscribe: [], emit: [], publish: [] };
      Promise.resolve().then(() => this._flushPost(conn));
    }
    conn.post[kind].push(item);
  }

  async _flushPost(conn) {
    const body = conn.post;
    conn.post = null;
    if (this._conn !== conn) return;
    const unsubscribe = body.unsubscribe.map((topic) => topic.pattern);
    const payload = { connection_id: this.connectionId, subscribe: body.subscribe, unsubscribe };
    if (conn.streamKey) payload.stream_key = conn.streamKey;
    if (body.emit.length) payload.emit = body.emit;
    if (body.publish.length) payload.publish = body.publish;
    const asked = [...body.emit, ...body.publish].map((item) => item.id);
    let response;
    let json = null;
    try {
      response = await fetch(this.url.href, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload),
      });
      json = await response.json().catch(() => null);
    } catch (err) {
      if (this._conn !== conn) return;
      // The new stream will list every subscription: reconnecting loses nothing.
      return this._down(null, `changing subscriptions failed: ${err && err.message}`);
    }
    if (this._conn !== conn) return;
    const ids = body.subscribe.map((item) => item.id);
    if (response.ok) {
      for (const frame of replyFrames(json)) {
        if (frame.id != null && ["ack", "error"].includes(frame.type) && this._answer(frame)) continue;
        if (this._conn === conn && ["subscribed", "error"].includes(frame.type)) this._onReply(frame, true);
      }
      this._answerMissing(ids, "the server's reply did not mention this subscription");
      this._answerAsks(asked, { code: "bad_reply", message: "the server's reply did not answer this" });
    } else if (response.status === 429) {
      const retryAfter = (json && json.error && json.error.retry_after) || response.headers.get("Retry-After");
      this._answerAsks(asked, { code: "rate_limited", message: "too many messages", retry_after: Number(retryAfter) || null });
      for (const id of ids) {
        const req = this._requests.get(id);
        this._requests.delete(id);
        if (req) this._retryLater(req, retryAfter);
      }
      for (const topic of body.unsubscribe) this._retryLater({ type: "unsubscribe", topic }, retryAfter);
    } else if (REFUSED_STATUSES.has(response.status)) {
      const e = (json && json.error) || {};
      const code = e.code || `http_${response.status}`;
      this._answerMissing(ids, e.message || `HTTP ${response.status}`, code);
      this._answerAsks(asked, { code, message: e.message || `HTTP ${response.status}` });
      if (!ids.length) this._emitError(new RealtimeError(code, e.message || `HTTP ${response.status}`));
    } else {
      // E.g. 404: the server no longer knows this connection. Start a fresh stream.
      this._down(null, `changing subscriptions failed: HTTP ${response.status}`);
    }
  }

  /** Fail the asks among `ids` still unanswered with `error`'s code and message. */
  _answerAsks(ids, error) {
    for (const id of ids) this._answer({ type: "error", id, ...error });
  }

  /** Fail the requests among `ids` still unanswered (nothing may wait forever). */
  _answerMissing(ids, message, code = "bad_reply") {
    for (const id of ids) {
      if (this._requests.has(id)) this._onReply({ type: "error", id, code, message });
    }
  }

  // -- events to listeners ----------------------------------------------------------

  _emit(name, arg) {
    const set = this._listeners.get(name);
    if (set) for (const callback of [...set]) safeCall(callback, arg);
  }

  _emitError(err) {
    this._emit("error", err);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", state);
  }
}

// -- live lists -------------------------------------------------------------------

/** Compare two JSON values as the server's ORDER BY does: nulls first, numbers as
 * numbers, text (and ISO dates and times) by code unit. */
function compareValues(a, b) {
  if (a === b) return 0;
  if (a == null) return -1;
  if (b == null) return 1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The order of a snapshot's `sort` ("-id", "text", …), the key breaking ties. */
function orderOf(sort, key) {
  const field = sort.replace(/^-/, "");
  const direction = sort.startsWith("-") ? -1 : 1;
  return (a, b) => direction * (compareValues(a[field], b[field]) || compareValues(a[key], b[key]));
}

const sameRecord = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * A DOM list kept in step with a subscription. Each record's element is made once by
 * `render(record)` and marked `data-topic="collection/id"`; an update patches it with
 * `update(element, record)` when given (so that an edit in progress survives), else
 * replaces it; a delete removes it; a create is inserted where the order puts it
 * (a record leaving the list's filter or the reader's rule arrives as a delete, one
 * entering it as a create: `event.reason` says which).
 * Elements of other records are never touched, and a snapshot after a reconnect keeps
 * the elements of records that did not change. A refused subscription marks the list
 * `data-stale="<code>"` (and `stale`) until the next snapshot.
 */
export class LiveList {
  constructor(client, pattern, options) {
    const { list, render, update = null, compare = null, empty = null } = options;
    if (!list || typeof list.insertBefore !== "function") throw new TypeError("liveList: list must be a DOM element");
    if (typeof render !== "function") throw new TypeError("liveList: render must be a function");
    this.list = list;
    this._render = render;
    this._update = typeof update === "function" ? update : null;
    this._compare = typeof compare === "function" ? compare : null;
    this._empty = empty;
    this._onChange = options.onChange;
    this._recordId = client.options.recordId;
    this._items = new Map(); // "collection/id" -> {record, element}, in the list's order
    this._order = null; // from the snapshot's sort, when no compare is given
    this._key = "id";
    this._placeholder = null;
    this.stale = null; // the refusal that stopped the list following, while it lasts
    const onError = options.onError;
    this._unsubscribe = client.subscribe(pattern, (event) => this._onEvent(event), {
      snapshot: true,
      // The server's: a record edited out of it arrives as a delete, back in as a create.
      filter: options.filter,
      expand: options.expand, // records arrive with their related records, to render
      onSnapshot: (snapshot) => this._onSnapshot(pattern, snapshot),
      onError: (error) => {
        this._markStale(error);
        if (typeof onError === "function") safeCall(onError, error);
        else client._emitError(error); // what a subscription without onError does
      },
    });
    this.ready = this._unsubscribe.ready;
  }

  /** Refused (e.g. `forbidden` once the session ended): what the list shows is no
   * longer followed, so say so on the list itself until a snapshot makes it live again. */
  _markStale(error) {
    this.stale = error;
    this.list.setAttribute("data-stale", error.code);
  }

  /** The records shown, in the list's order. */
  get records() {
    return [...this._items.values()].map((item) => item.record);
  }

  /** Stop following; the list keeps what it shows. */
  close() {
    this._unsubscribe();
  }

  _onSnapshot(pattern, snapshot) {
    this.stale = null;
    this.list.removeAttribute("data-stale");
    this._key = snapshot.key || "id";
    this._order = orderOf(snapshot.sort || `-${this._key}`, this._key);
    const collection = pattern.split("/")[0];
    const next = new Map();
    for (const record of snapshot.records) {
      const topic = `${collection}/${record[this._key]}`;
      const item = this._items.get(topic);
      if (item) this._patch(topic, item, record);
      next.set(topic, item || this._make(topic, record));
    }
    for (const [topic, item] of this._items) if (!next.has(topic)) item.element.remove();
    const ordered = this._compare ? [...next].sort(([, a], [, b]) => this._compare(a.record, b.record)) : [...next];
    this._items = new Map(ordered);
    // What the page rendered before the first snapshot goes: the snapshot is the truth.
    const mine = new Set([...this._items.values()].map((item) => item.element));
    for (const child of [...this.list.children]) if (!mine.has(child)) child.remove();
    let previous = null;
    for (const { element } of this._items.values()) {
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (element !== expected) this.list.insertBefore(element, expected);
      previous = element;
    }
    this._changed({ action: "snapshot" });
  }

  _onEvent(event) {
    if (!("record" in event) || !event.collection) return; // custom events, presence
    const id = this._recordId(event);
    if (id == null) return;
    const topic = `${event.collection}/${id}`;
    const item = this._items.get(topic);
    if (event.action === "delete") {
      if (!item) return;
      item.element.remove();
      this._items.delete(topic);
    } else if (item) {
      this._patch(topic, item, event.record);
      this._place(topic, item);
    } else {
      const fresh = this._make(topic, event.record);
      this._items.set(topic, fresh);
      this._place(topic, fresh);
    }
    this._changed(event);
  }

  _make(topic, record) {
    const element = this._render(record);
    element.dataset.topic = topic;
    return { record, element };
  }

  _patch(topic, item, record) {
    if (sameRecord(item.record, record)) return;
    item.record = record;
    if (this._update) {
      this._update(item.element, record);
      return;
    }
    const element = this._render(record);
    element.dataset.topic = topic;
    item.element.replaceWith(element);
    item.element = element;
  }

  /** Move `item` where the order puts it (after equals: arrival order among them). */
  _place(topic, item) {
    const compare = this._compare || this._order;
    const others = [...this._items].filter(([t]) => t !== topic);
    let before = null;
    if (compare) {
      const next = others.find(([, other]) => compare(item.record, other.record) < 0);
      before = next ? next[1] : null;
    }
    const anchor = before ? before.element : null;
    if (item.element.nextSibling !== anchor || item.element.parentNode !== this.list) {
      this.list.insertBefore(item.element, anchor);
    }
    const ordered = [];
    for (const entry of others) {
      if (entry[1] === before) ordered.push([topic, item]);
      ordered.push(entry);
    }
    if (!before) ordered.push([topic, item]);
    this._items = new Map(ordered);
  }

  _changed(change) {
    this._showEmpty();
    safeCall(this._onChange, this.records, change);
  }

  _showEmpty() {
    if (this._items.size > 0 || this._empty == null) {
      if (this._placeholder) this._placeholder.remove();
      this._placeholder = null;
      return;
    }
    if (!this._placeholder) {
      const empty = this._empty;
      const tag = this.list.tagName === "UL" || this.list.tagName === "OL" ? "li" : "div";
      const element = typeof empty === "function" ? empty() : Object.assign(document.createElement(tag), { textContent: String(empty), className: "empty" });
      this._placeholder = element;
    }
    if (this._placeholder.parentNode !== this.list) this.list.append(this._placeholder);
  }
}

function errorFrom(frame, pattern) {
  return new RealtimeError(frame.code || "error", frame.message || frame.code, {
    pattern: frame.pattern ?? pattern,
    retryAfter: frame.retry_after ?? null,
    frame,
  });
}

RealtimeClient.RealtimeError = RealtimeError;
RealtimeClient.LiveList = LiveList;

// For pages that load this file with <script type="module"> and use a global.
if (typeof window !== "undefined") window.RealtimeClient = RealtimeClient;
