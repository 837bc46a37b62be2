// Type declarations for coven-client.js (the Spell Coven hub WebSocket client).

/** Close codes the hub uses (contract §3) and the client's own (4000, 4001). */
export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  ABNORMAL: 1006;
  TRY_AGAIN_LATER: 1013;
  UNAUTHORIZED: 4401;
  AUTH_TIMEOUT: 4408;
  CLIENT_GAP: 4000;
  CLIENT_STALL: 4001;
}>;

export type ConnectionState =
  | 'connecting'
  | 'authenticating'
  | 'live'
  | 'resuming'
  | 'backoff'
  | 'closed'
  | 'unauthorized';

export declare const State: Readonly<{
  CONNECTING: 'connecting';
  RESUMING: 'resuming';
  AUTHENTICATING: 'authenticating';
  LIVE: 'live';
  BACKOFF: 'backoff';
  CLOSED: 'closed';
  UNAUTHORIZED: 'unauthorized';
}>;

export type EventName = 'room.created' | 'room.deleted' | 'voice.joined' | 'voice.left';

/** `{"v":1,"type":"event",...}` as the hub sends it. Snowflakes are strings. */
export interface HubEvent {
  v: 1;
  type: 'event';
  event: EventName | string;
  payload: { guildId: string; channelId: string; name?: string; userId?: string };
  ts: number;
  seq: number;
}

export interface HubSnapshot {
  v: 1;
  type: 'snapshot';
  seq: number;
  payload: { rooms: Array<{ channelId: string; name: string | null; members: string[] }> };
}

export interface HubAck {
  v: 1;
  type: 'ack';
  event: 'auth.ok';
  guildId: string;
  seq: number;
  resumed: boolean;
}

export type HubMessage = HubEvent | HubSnapshot | HubAck;

export interface Room {
  /** The channel name when known (a channel first seen through a join has none). */
  name: string | null;
  /** User ids in the voice channel. */
  members: Set<string>;
}

/** The subset of the browser WebSocket the client uses (injectable for tests). */
export interface WebSocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface CovenClientOptions {
  /** The hub's WebSocket URL, e.g. `wss://hub.example/ws`. */
  url: string;
  /**
   * A session JWT. Called at the first connection and again after a close 4401; a
   * falsy result or a throw stops the client with state `unauthorized`.
   */
  getToken: () => string | null | undefined | Promise<string | null | undefined>;
  /** Every applied event, in seq order, exactly once. `rooms` is already updated. */
  onEvent?: (event: HubEvent) => void;
  /** Every snapshot, after `rooms` was replaced. */
  onSnapshot?: (snapshot: HubSnapshot) => void;
  /** Every state change. */
  onState?: (state: ConnectionState) => void;
  /** Every message as received, before it is applied (duplicates included). */
  onMessage?: (message: HubMessage) => void;
  /** Start from this seq (sent as `since` on the first connection). */
  since?: number;
  /** Reconnect backoff: full jitter in [0, min(cap, base * 2^attempt)). Default 500 ms. */
  backoffBaseMs?: number;
  /** Default 30 000 ms. */
  backoffCapMs?: number;
  /** Not live (acked) within this: drop and retry. Default 20 000 ms. */
  connectTimeoutMs?: number;
  /** Default `globalThis.WebSocket`. */
  WebSocket?: new (url: string) => WebSocketLike;
  /** Default `Math.random`. */
  random?: () => number;
  /** Default `globalThis.setTimeout`. */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  /** Default `globalThis.clearTimeout`. */
  clearTimeout?: (id: unknown) => void;
}

export interface CovenClientStats {
  /** Events applied. */
  events: number;
  /** Events ignored because their seq was already applied. */
  duplicates: number;
  /** Seq gaps seen (each one triggers a resume). */
  gaps: number;
  /** Snapshots applied. */
  snapshots: number;
  /** Reconnect attempts scheduled. */
  reconnects: number;
}

export declare class CovenClient {
  /** Connects at once. */
  constructor(options: CovenClientOptions);
  /** channelId -> room. Replaced (a new Map) by every snapshot. */
  rooms: Map<string, Room>;
  readonly stats: CovenClientStats;
  /** Seq of the last applied event or snapshot; null before the first. */
  readonly seq: number | null;
  readonly state: ConnectionState;
  /** Stops for good (close 1000, no retry). */
  close(): void;
  /** Drops the connection and resumes at once with `since`. */
  reconnect(): void;
}

/** Applies one event to a rooms map (what the client does for each event). */
export declare function applyEvent(
  rooms: Map<string, Room>,
  event: string,
  payload: HubEvent['payload'],
): void;

/** Full-jitter exponential backoff delay in ms. */
export declare function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number,
): number;
