// coven-client.js: a dependency-free browser (and Node) client for the Spell Coven hub's
// WebSocket (`GET /ws`, contract §3). It authenticates, keeps the last `seq`, applies
// snapshots and events to a live view of the rooms and their members, and reconnects by
// itself: exponential backoff with full jitter, resuming with `since` so nothing is missed
// and nothing is applied twice.
//
//   import { CovenClient } from './coven-client.js';
//   const client = new CovenClient({
//     url: 'wss://hub.example/ws',
//     getToken: async () => (await fetch('/session-token')).text(),
//     onEvent: (event) => console.log(event.event, event.payload),
//     onState: (state) => console.log('connection', state),
//   });
//   // client.rooms: Map channelId -> { name, members: Set<userId> }
//   // client.close() when done.
//
// Types: coven-client.d.ts. Tests: test/coven-client.test.mjs (node --test).

/** Close codes the hub uses (contract §3) and the client's own. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001, // hub shutting down or restarting: resume elsewhere with `since`
  ABNORMAL: 1006, // no close frame (TCP drop); never sent, only observed
  TRY_AGAIN_LATER: 1013, // we read too slowly and the hub dropped us
  UNAUTHORIZED: 4401, // invalid or expired token: get a new one
  AUTH_TIMEOUT: 4408, // no auth within 10 s
  CLIENT_GAP: 4000, // ours: a seq gap, reconnect and resume
  CLIENT_STALL: 4001, // ours: not live within connectTimeoutMs
});

/** Connection states, in the order a healthy connection goes through them. */
export const State = Object.freeze({
  CONNECTING: 'connecting', // first connection, no seq yet
  RESUMING: 'resuming', // reconnecting with `since`
  AUTHENTICATING: 'authenticating', // socket open, auth sent, waiting for the ack
  LIVE: 'live', // acked: snapshot or replay then live events
  BACKOFF: 'backoff', // waiting before the next attempt
  CLOSED: 'closed', // close() was called
  UNAUTHORIZED: 'unauthorized', // the token was refused and no fresh one was had
});

const DEFAULTS = Object.freeze({
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
  connectTimeoutMs: 20_000,
});

/**
 * Full-jitter exponential backoff: a uniform delay in [0, min(cap, base * 2^attempt)).
 * (AWS Architecture Blog, "Exponential Backoff And Jitter".)
 */
export function backoffDelay(attempt, baseMs, capMs, random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export class CovenClient {
  #url;
  #getToken;
  #onEvent;
  #onState;
  #onSnapshot;
  #onMessage;
  #WebSocket;
  #random;
  #setTimeout;
  #clearTimeout;
  #opts;

  #socket = null;
  #timer = null;
  #stallTimer = null;
  #token = null;
  #attempt = 0;
  #tokenRefused = false; // the current token got 4401 once already
  #attemptId = 0; // bumps on every connection attempt; a stale async attempt stops
  #stopped = false;
  #seq = null;
  #state = State.CONNECTING;

  /** channelId -> { name: string|null, members: Set<string> } */
  rooms = new Map();
  /** Counters for dashboards and debugging. */
  stats = { events: 0, duplicates: 0, gaps: 0, snapshots: 0, reconnects: 0 };

  /**
   * @param {object} options see coven-client.d.ts
   */
  constructor(options) {
    const o = options ?? {};
    if (typeof o.url !== 'string') throw new TypeError('url must be a string');
    if (typeof o.getToken !== 'function') throw new TypeError('getToken must be a function');
    this.#url = o.url;
    this.#getToken = o.getToken;
    this.#onEvent = o.onEvent ?? (() => {});
    this.#onState = o.onState ?? (() => {});
    this.#onSnapshot = o.onSnapshot ?? (() => {});
    this.#onMessage = o.onMessage ?? (() => {});
    this.#WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this.#random = o.random ?? Math.random;
    this.#setTimeout = o.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    this.#clearTimeout = o.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
    this.#opts = {
      backoffBaseMs: o.backoffBaseMs ?? DEFAULTS.backoffBaseMs,
      backoffCapMs: o.backoffCapMs ?? DEFAULTS.backoffCapMs,
      connectTimeoutMs: o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    };
    if (typeof this.#WebSocket !== 'function') throw new TypeError('no WebSocket implementation');
    if (typeof o.since === 'number') this.#seq = o.since;
    this.#connect();
  }

  /** The seq of the last event applied (or of the last snapshot); null before the first. */
  get seq() {
    return this.#seq;
  }

  /** The connection state (see State). */
  get state() {
    return this.#state;
  }

  /** Stops for good: closes the socket with 1000 and cancels any pending retry. */
  close() {
    this.#stopped = true;
    this.#clearTimers();
    const socket = this.#socket;
    this.#socket = null;
    if (socket) {
      detach(socket);
      try {
        socket.close(CloseCode.NORMAL, 'client closed');
      } catch {
        // already closing
      }
    }
    this.#setState(State.CLOSED);
  }

  /**
   * Drops the current connection and resumes at once with `since` (for example when the
   * browser reports it is back online). No-op once closed or unauthorized.
   */
  reconnect() {
    if (this.#stopped) return;
    this.#attempt = 0;
    this.#drop(CloseCode.CLIENT_GAP, 'reconnect requested');
    this.#connect();
  }

  // ---- connection lifecycle --------------------------------------------------------

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    safely(() => this.#onState(state));
  }

  #clearTimers() {
    if (this.#timer !== null) this.#clearTimeout(this.#timer);
    if (this.#stallTimer !== null) this.#clearTimeout(this.#stallTimer);
    this.#timer = null;
    this.#stallTimer = null;
  }

  async #connect() {
    if (this.#stopped) return;
    this.#clearTimers();
    const attemptId = ++this.#attemptId;
    this.#setState(this.#seq === null ? State.CONNECTING : State.RESUMING);
    if (this.#token === null) {
      const token = await this.#fetchToken();
      // close() or a newer attempt (reconnect() while we waited) took over.
      if (this.#stopped || attemptId !== this.#attemptId) return;
      if (!token) {
        this.#unauthorized();
        return;
      }
      this.#token = token;
    }
    let socket;
    try {
      socket = new this.#WebSocket(this.#url);
    } catch {
      this.#scheduleRetry();
      return;
    }
    this.#socket = socket;
    // Not live within the deadline (a half-open TCP connection, a hung proxy): retry.
    this.#stallTimer = this.#setTimeout(() => {
      this.#stallTimer = null;
      if (this.#socket === socket && this.#state !== State.LIVE) {
        this.#drop(CloseCode.CLIENT_STALL, 'not live in time');
        this.#scheduleRetry();
      }
    }, this.#opts.connectTimeoutMs);
    socket.onopen = () => {
      if (this.#socket !== socket) return;
      // Contract §3.1: auth is the first message; `since` asks for a replay from our seq.
      const auth = { type: 'auth', token: this.#token };
      if (this.#seq !== null) auth.since = this.#seq;
      try {
        socket.send(JSON.stringify(auth));
      } catch {
        return; // the close event follows
      }
      this.#setState(State.AUTHENTICATING);
    };
    socket.onmessage = (message) => {
      if (this.#socket === socket) this.#receive(message.data);
    };
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#closed(event.code);
    };
    socket.onerror = () => {}; // a close event always follows
  }

  async #fetchToken() {
    try {
      const token = await this.#getToken();
      return typeof token === 'string' && token.length > 0 ? token : null;
    } catch {
      return null;
    }
  }

  #unauthorized() {
    this.#stopped = true;
    this.#clearTimers();
    this.#setState(State.UNAUTHORIZED);
  }

  /** Closes the current socket (if any) without reacting to its close event. */
  #drop(code, reason) {
    const socket = this.#socket;
    this.#socket = null;
    if (this.#stallTimer !== null) this.#clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
    if (!socket) return;
    detach(socket);
    try {
      socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  #closed(code) {
    this.#socket = null;
    if (this.#stopped) return;
    if (code === CloseCode.UNAUTHORIZED) {
      // Fatal for this token (contract §3.1): ask for a fresh one, once. A fresh token
      // that is refused too means the session is over: stop instead of looping.
      if (this.#tokenRefused) {
        this.#unauthorized();
        return;
      }
      this.#tokenRefused = true;
      this.#token = null;
      this.#attempt = 0;
      this.#connect();
      return;
    }
    // Everything else is transient: 1001 (hub restarting), 1006 (dropped), 1013 (we were
    // slow), 4408 (auth too late), 1011, 1012... Back off and resume with `since`.
    this.#scheduleRetry();
  }

  #scheduleRetry() {
    if (this.#stopped) return;
    this.#clearTimers();
    const delay = backoffDelay(
      this.#attempt,
      this.#opts.backoffBaseMs,
      this.#opts.backoffCapMs,
      this.#random,
    );
    this.#attempt += 1;
    this.stats.reconnects += 1;
    this.#setState(State.BACKOFF);
    this.#timer = this.#setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, delay);
  }

  // ---- messages --------------------------------------------------------------------

  #receive(data) {
    let message;
    try {
      message = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      return; // not ours to judge; the hub only sends JSON
    }
    if (message === null || typeof message !== 'object') return;
    safely(() => this.#onMessage(message));
    switch (message.type) {
      case 'ack':
        if (message.event === 'auth.ok') {
          if (this.#stallTimer !== null) this.#clearTimeout(this.#stallTimer);
          this.#stallTimer = null;
          this.#attempt = 0;
          this.#tokenRefused = false;
          this.#setState(State.LIVE);
        }
        break;
      case 'snapshot':
        this.#applySnapshot(message);
        break;
      case 'event':
        this.#applyEvent(message);
        break;
      default:
        break; // newer message types are ignored
    }
  }

  #applySnapshot(message) {
    const rooms = new Map();
    for (const room of message.payload?.rooms ?? []) {
      if (typeof room?.channelId !== 'string') continue;
      rooms.set(room.channelId, {
        name: typeof room.name === 'string' ? room.name : null,
        members: new Set((room.members ?? []).map(String)),
      });
    }
    this.rooms = rooms;
    if (typeof message.seq === 'number') this.#seq = message.seq;
    this.stats.snapshots += 1;
    safely(() => this.#onSnapshot(message));
  }

  #applyEvent(message) {
    const seq = message.seq;
    if (typeof seq !== 'number') return;
    if (this.#seq !== null && seq <= this.#seq) {
      // Already applied (contract §3.3 promises none twice; we check anyway).
      this.stats.duplicates += 1;
      return;
    }
    if (this.#seq !== null && seq > this.#seq + 1) {
      // Contract §3.4: seq grows by exactly 1. A gap means we missed events: resume from
      // our seq so the hub replays them (or sends a snapshot if they are gone).
      // Through the backoff (attempt is 0 after an ack, so it is quick) so that a hub
      // that keeps skipping cannot make us spin.
      this.stats.gaps += 1;
      this.#drop(CloseCode.CLIENT_GAP, 'seq gap');
      this.#scheduleRetry();
      return;
    }
    if (this.#seq === null) {
      // No baseline yet (the snapshot always comes first): applying would be guesswork.
      return;
    }
    this.#seq = seq;
    this.stats.events += 1;
    applyEvent(this.rooms, message.event, message.payload ?? {});
    safely(() => this.#onEvent(message));
  }
}

/** Applies one contract §3.4 event to a rooms map (exported for tests and custom views). */
export function applyEvent(rooms, event, payload) {
  const channelId = payload.channelId;
  if (typeof channelId !== 'string') return;
  const ensure = (name) => {
    let room = rooms.get(channelId);
    if (!room) {
      room = { name: name ?? null, members: new Set() };
      rooms.set(channelId, room);
    } else if (typeof name === 'string') {
      room.name = name;
    }
    return room;
  };
  switch (event) {
    case 'room.created':
      ensure(typeof payload.name === 'string' ? payload.name : null);
      break;
    case 'room.deleted':
      // A room deleted with users inside yields room.deleted only: drop its members too.
      rooms.delete(channelId);
      break;
    case 'voice.joined':
      if (typeof payload.userId === 'string') ensure(undefined).members.add(payload.userId);
      break;
    case 'voice.left':
      if (typeof payload.userId === 'string') rooms.get(channelId)?.members.delete(payload.userId);
      break;
    default:
      break; // unknown events are skipped, not fatal
  }
}

function detach(socket) {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = null;
}

function safely(callback) {
  try {
    callback();
  } catch (error) {
    // A throwing callback must not break the connection logic.
    globalThis.console?.error?.('coven-client: callback threw', error);
  }
}
