// Types for realtime-client.js, the browser client of /realtime/subscribe.
// See docs/client.md for the API and examples.

export type ConnectionState = "connecting" | "connected" | "disconnected";
export type TransportName = "websocket" | "sse";
export type JSONScalar = string | number | boolean | null;
/** A record as the user may see it: its non-hidden fields. */
export type RecordData = Record<string, unknown>;

/** The user of a connection, or null for a visitor without a session. */
export interface RealtimeUser {
  id: number | string;
  username: string;
  is_admin: boolean;
  [field: string]: unknown;
}

// -- server → client frames -----------------------------------------------------

export interface ConnectedFrame {
  type: "connected";
  connection_id: string;
  user: RealtimeUser | null;
  /** Seconds between the server's pings. */
  heartbeat: number;
  /**
   * SSE only: the stream's secret, which only its client reads. A `POST
   * /realtime/subscribe` that changes the stream carries it (a visitor's stream, which
   * has no session, needs it); the client does this itself. Never share it.
   */
  stream_key?: string;
}

interface RecordEventBase<R> {
  type: "event";
  /** Opaque, ordered as published; the client de-duplicates by it. */
  id: string;
  collection: string;
  /** `<collection>/<record id>`, whatever the primary key is called. */
  topic: string;
  record: R;
}
export interface CreateEventFrame<R = RecordData> extends RecordEventBase<R> {
  action: "create";
  /**
   * Absent for a record created. Set when an update brought an existing record into
   * this connection's view: "filter" (it now passes a subscription's filter) or
   * "access" (the read rule now lets this user read it). The whole record is here.
   */
  reason?: "filter" | "access";
}
export interface UpdateEventFrame<R = RecordData> extends RecordEventBase<R> {
  action: "update";
  /** The fields this update changed (visible ones only). */
  changed: string[];
}
export interface DeleteEventFrame<R = RecordData> extends RecordEventBase<R> {
  action: "delete";
  /** The record's last visible state (to this reader). */
  record: R;
  /**
   * Absent for a record deleted. Set when an update took the record out of this
   * connection's view, which it still exists beyond: "filter" (it no longer passes the
   * subscription's filter) or "access" (the read rule no longer lets this user read it;
   * `record` is then as they last saw it).
   */
  reason?: "filter" | "access";
}
export type RecordEventFrame<R = RecordData> =
  | CreateEventFrame<R>
  | UpdateEventFrame<R>
  | DeleteEventFrame<R>;

/** From `app.realtime_broadcast(name, data, collection=…)`. */
export interface CustomEventFrame<D = unknown> {
  type: "event";
  id: string;
  /** null: a broadcast to everyone (or to targeted clients/users), see `on("custom")`. */
  collection: string | null;
  /** The collection, or null. */
  topic: string | null;
  action: "custom";
  name: string;
  data: D;
  /** Who published it from a browser (a channel's `publish`); absent for the server's. */
  user?: PresenceUser;
}

/** A user as others see them (the `connected` frame's `user`). */
export interface PresenceUser {
  id: string | number;
  [field: string]: unknown;
}

/** On a topic that tracks presence: a user arrived (their first connection) or left
 * (their last). */
export interface PresenceEventFrame {
  type: "event";
  id: string;
  collection: string;
  topic: string;
  action: "join" | "leave";
  user: PresenceUser;
}

/** What a subscription callback receives. Narrow on `action`. */
export type EventFrame<R = RecordData, D = unknown> =
  | RecordEventFrame<R>
  | CustomEventFrame<D>
  | PresenceEventFrame;

export interface Snapshot<R = RecordData> {
  records: R[];
  /** The event id the records stand at; live events follow from there. */
  position: string;
  /** false: the server capped the list and more records exist. */
  complete: boolean;
  /** The order of `records`: "-id" (newest first, the default) or another field. */
  sort: string;
  /** The field holding each record's id (the id in its events' `topic`). */
  key: string;
}

export type RequestId = string | number | null;

export interface SubscribedFrame<R = RecordData> {
  type: "subscribed";
  id: RequestId;
  pattern: string;
  /** true: a `since` was given and the missed events follow (replayed). */
  recovered: boolean;
  /** Present when the subscription asked for `snapshot: true`. */
  snapshot?: Snapshot<R>;
  /** On a topic that tracks presence: who is here now (joins and leaves follow). */
  presence?: PresenceUser[];
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  id: RequestId;
  pattern: string;
}

export type ServerErrorCode =
  | "bad_request"
  | "invalid_pattern"
  | "forbidden"
  | "rate_limited"
  | "too_many_subscriptions"
  | "message_too_big"
  /** The handler of a client event failed. */
  | "internal_error"
  /** Not now (a snapshot's table is locked); the client asks again after `retry_after`. */
  | "unavailable";

export interface ErrorFrame {
  type: "error";
  id: RequestId;
  code: ServerErrorCode;
  message: string;
  /** Seconds, with `rate_limited` and `unavailable`. */
  retry_after?: number;
  /** Why, where the code alone does not say: "filter" for a refused filter expression,
   * "expand" for a refused expand (with `field`). */
  reason?: string;
  /** With `reason: "filter"`: the 0-based index of the character where it goes wrong. */
  position?: number;
  /** With `reason: "expand"`: the name refused (unknown and hidden alike). */
  field?: string;
}

/** The answer to an emit (the handler's return value) or a publish (`{event_id}`). */
export interface AckFrame<D = unknown> {
  type: "ack";
  id: RequestId;
  data: D;
}

export interface PingFrame {
  type: "ping";
}
export interface PongFrame {
  type: "pong";
}
/** SSE only: why the server ends a stream (SSE has no close codes of its own). */
export interface CloseFrame {
  type: "close";
  code: number;
  reason: string;
}

export type ServerFrame =
  | ConnectedFrame
  | EventFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | AckFrame
  | ErrorFrame
  | PingFrame
  | PongFrame
  | CloseFrame;

// -- client → server frames (what the client sends for you) ----------------------

export interface SubscribeRequest {
  type: "subscribe";
  id: string;
  pattern: string;
  since?: string;
  /** An expression of the filter language (docs/api.md#filters), or equality on fields. */
  filter?: Record<string, JSONScalar> | string;
  /** Foreign keys whose records events and snapshots carry in `record.expand`. */
  expand?: string[];
  snapshot?: boolean;
}
export interface UnsubscribeRequest {
  type: "unsubscribe";
  id: string;
  pattern: string;
}
export interface EmitRequest {
  type: "emit";
  /** null: no ack (an error still comes). */
  id: string | null;
  name: string;
  data: unknown;
}
export interface PublishRequest {
  type: "publish";
  id: string;
  channel: string;
  name: string;
  data: unknown;
}
export type ClientFrame =
  | SubscribeRequest
  | UnsubscribeRequest
  | EmitRequest
  | PublishRequest
  | PingFrame
  | PongFrame;

// -- the client -------------------------------------------------------------------

export type RealtimeErrorCode =
  | ServerErrorCode
  /** The server ended the session (logout, user removed, its lifetime reached): close code 4401. */
  | "session_ended"
  /** An established connection dropped (see `closeCode`). */
  | "connection_lost"
  /** A connection attempt failed before `connected`. */
  | "connect_failed"
  /** No `connected` within `connectTimeout`, or 3 heartbeats of silence. */
  | "timeout"
  /** The server sent something that is not a JSON frame. */
  | "bad_frame"
  /** An SSE subscription change got no answer for a subscription. */
  | "bad_reply"
  /** Neither WebSocket nor EventSource is available for the chosen transport. */
  | "unsupported"
  | (string & {});

export class RealtimeError extends Error {
  constructor(code: RealtimeErrorCode, message?: string, detail?: Partial<RealtimeErrorDetail>);
  readonly name: "RealtimeError";
  readonly code: RealtimeErrorCode;
  /** The subscription pattern it concerns, if any. */
  readonly pattern: string | null;
  /** The WebSocket close code (or the SSE close frame's), if any. */
  readonly closeCode: number | null;
  /** Seconds, for `rate_limited` and `unavailable`. */
  readonly retryAfter: number | null;
  /** The server frame it came from, if any. */
  readonly frame: ErrorFrame | unknown | null;
}
interface RealtimeErrorDetail {
  pattern: string | null;
  closeCode: number | null;
  retryAfter: number | null;
  frame: unknown;
}

export interface BackoffOptions {
  /** Milliseconds; the first retry waits a random 0…initial. Default 500. */
  initial?: number;
  /** Milliseconds; the cap of the exponential. Default 30000. */
  max?: number;
}

export interface RealtimeClientOptions {
  /** Default "auto": WebSocket, SSE when WebSocket is missing or keeps failing. */
  transport?: "auto" | TransportName;
  /** Connect with `?batch=1` and accept arrays of frames. Default true. */
  batch?: boolean;
  backoff?: BackoffOptions;
  /** WebSocket attempts in a row that never reach `connected` before "auto" uses SSE. Default 3. */
  websocketFailuresBeforeSse?: number;
  /** Milliseconds to wait for `connected`. Default 10000. */
  connectTimeout?: number;
  /** Connect in the constructor. Default true. */
  autoConnect?: boolean;
  /** How many recent event ids are remembered for de-duplication. Default 1000. */
  dedupeWindow?: number;
  /**
   * The record id of an event, matched against record patterns ("posts/42").
   * Default: the id in the event's `topic`, whatever the primary key is called.
   */
  recordId?: (event: RecordEventFrame) => string | number | null | undefined;
}

export interface SubscribeOptions<R = RecordData> {
  /**
   * Applied by the server: an expression of the filter language (docs/api.md#filters),
   * e.g. `"text ~ 'tea' && created_at > '2024-06-01'"`, or `{field: value}` equality
   * on top-level record fields. An expression cannot share a pattern with a different
   * filter on one client (the subscribe fails with `bad_request`).
   */
  filter?: Record<string, JSONScalar> | string;
  /**
   * Foreign keys whose records each event's and snapshot's record carries in its
   * `expand` object (docs/api.md#expand), e.g. `["author"]` or `"author,project"`:
   * each as this user may see it, absent if they may not. Subscriptions of one
   * pattern on a client ask for the union of theirs.
   */
  expand?: string[] | string;
  /**
   * Ask for the records now visible with the subscription, atomically: no gap and no
   * race with the live events. Collection and record patterns only.
   */
  snapshot?: boolean;
  /** With `snapshot`: the records, first and again after every reconnect. */
  onSnapshot?: (snapshot: Snapshot<R>) => void;
  /** After a reconnect, when missed events could not be replayed: refetch. */
  onResync?: (reply: SubscribedFrame<R>) => void;
  /**
   * Errors of this subscription: the first refusal (also a rejection of `ready`, which
   * then counts as handled) and refusals of resubscriptions after a reconnect.
   */
  onError?: (error: RealtimeError) => void;
  /** On a topic that tracks presence: who is here, with every (re)subscription. */
  onPresence?: (users: PresenceUser[]) => void;
}

/** Call it to unsubscribe (idempotent). */
export interface Unsubscribe<R = RecordData> {
  (): void;
  /** Resolves with the server's `subscribed` reply; rejects with a RealtimeError. */
  readonly ready: Promise<SubscribedFrame<R>>;
}

export interface LiveListOptions<R = RecordData> {
  /** The element whose children are the records' elements (a ul, ol, tbody, div…). */
  list: Element;
  /** One record's element; it gets `data-topic="collection/id"`. */
  render: (record: R) => HTMLElement;
  /** Patch an element in place on update (else it is replaced with a new render). */
  update?: (element: HTMLElement, record: R) => void;
  /** The list's order; default: the snapshot's (newest first). */
  compare?: (a: R, b: R) => number;
  /** Shown while the list is empty: text (in an `.empty` li or div) or an element. */
  empty?: string | (() => HTMLElement);
  /** After every change: the records in order, and the event (or {action: "snapshot"}). */
  onChange?: (records: R[], change: EventFrame<R> | { action: "snapshot" }) => void;
  /**
   * The server's filter (an expression of the filter language, or equality on fields):
   * the list shows the records that pass it, and a record edited out of it leaves the
   * list (a `delete` with `reason: "filter"`), edited back in returns (a `create`).
   */
  filter?: Record<string, JSONScalar> | string;
  /** Foreign keys whose records `render` and `update` get in `record.expand`. */
  expand?: string[] | string;
  /**
   * The subscription was refused: at first (also a rejection of `ready`), or when it is
   * asked again after a reconnect (`forbidden` once the session ended). The list is
   * marked stale first. Without it the error goes to `client.on("error")`.
   */
  onError?: (error: RealtimeError) => void;
}

export class LiveList<R = RecordData> {
  readonly list: Element;
  /** The records shown, in the list's order. */
  readonly records: R[];
  /** Resolves with the subscription's first reply. */
  readonly ready: Promise<SubscribedFrame<R>>;
  /**
   * The refusal that stopped the list following (its code is also the list element's
   * `data-stale` attribute), or null while it follows. The next snapshot clears both.
   */
  readonly stale: RealtimeError | null;
  /** Stop following; the list keeps what it shows. */
  close(): void;
}

export interface RealtimeClientEvents {
  state: ConnectionState;
  connected: ConnectedFrame;
  error: RealtimeError;
  /** Custom events without a collection (never routed to subscriptions). */
  custom: CustomEventFrame;
  /** Every event, once, whatever subscription it is for. */
  event: EventFrame;
}

export class RealtimeClient {
  /** `url` defaults to `/realtime/subscribe` on the page's origin; http(s) or ws(s). */
  constructor(url?: string | URL | null, options?: RealtimeClientOptions);
  constructor(options: RealtimeClientOptions);

  static readonly RealtimeError: typeof RealtimeError;
  static readonly LiveList: typeof LiveList;

  readonly options: Readonly<Required<RealtimeClientOptions>>;
  /** The endpoint, as an http(s) URL. */
  readonly url: URL;
  readonly state: ConnectionState;
  /** The transport in use, null while disconnected. */
  readonly transport: TransportName | null;
  readonly connectionId: string | null;
  /** The user of the last `connected` frame. */
  readonly user: RealtimeUser | null;
  /** The id of the last event received. */
  readonly lastEventId: string | null;

  subscribe<R = RecordData, D = unknown>(
    pattern: string,
    callback: (event: EventFrame<R, D>) => void,
    options?: SubscribeOptions<R>,
  ): Unsubscribe<R>;

  /**
   * Keep `options.list` showing the records of `pattern`, live: a snapshot, then each
   * create, update and delete applied in place to that record's element alone.
   */
  liveList<R = RecordData>(pattern: string, options: LiveListOptions<R>): LiveList<R>;

  /**
   * Send a client event to the server's handler (`@realtime.on(name)`); resolves with
   * its answer. Rejects with a RealtimeError: the server's code, "timeout", or
   * "connection_lost" (the connection went before the answer: it may have run).
   */
  emit<A = unknown>(name: string, data?: unknown, options?: { timeout?: number }): Promise<A>;

  /** Publish a custom event to a channel (its write rule permitting); resolves with its id. */
  publish(
    channel: string,
    name: string,
    data?: unknown,
    options?: { timeout?: number },
  ): Promise<{ event_id: string }>;

  /** Returns a function that removes the listener. */
  on<K extends keyof RealtimeClientEvents>(
    name: K,
    callback: (value: RealtimeClientEvents[K]) => void,
  ): () => void;
  off<K extends keyof RealtimeClientEvents>(
    name: K,
    callback: (value: RealtimeClientEvents[K]) => void,
  ): void;

  /** Connect; while waiting to reconnect, reconnect now. */
  connect(): void;
  /** Disconnect with 1000 and stop reconnecting; subscriptions stay for connect(). */
  close(): void;
}

declare global {
  interface Window {
    RealtimeClient: typeof RealtimeClient;
  }
}
