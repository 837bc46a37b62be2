// Test doubles for coven-client: a scripted WebSocket and manual timers. No network.

export class FakeTimers {
  now = 0;
  #next = 1;
  #pending = new Map(); // id -> { at, fn, delay }

  setTimeout = (fn, delay) => {
    const id = this.#next++;
    this.#pending.set(id, { at: this.now + delay, fn, delay });
    return id;
  };

  clearTimeout = (id) => {
    this.#pending.delete(id);
  };

  /** Delays of the timers still pending, in creation order. */
  get delays() {
    return [...this.#pending.values()].map((t) => t.delay);
  }

  get size() {
    return this.#pending.size;
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  tick(ms) {
    const end = this.now + ms;
    for (;;) {
      let due = null;
      for (const [id, t] of this.#pending) {
        if (t.at <= end && (due === null || t.at < due[1].at)) due = [id, t];
      }
      if (due === null) break;
      this.#pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
  }
}

/** Builds a WebSocket class whose instances land in `sockets`. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedWith = null;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      sockets.push(this);
    }
    send(data) {
      if (this.closedWith) throw new Error('send on a closed socket');
      this.sent.push(JSON.parse(data));
    }
    close(code, reason) {
      this.closedWith = { code, reason };
    }
    // ---- driven by the test, as the server / network would ----
    open() {
      this.onopen?.({});
    }
    receive(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }
    serverClose(code) {
      this.closedWith = { code, reason: 'server' };
      this.onclose?.({ code, reason: '', wasClean: code !== 1006 });
    }
  }
  return { FakeWebSocket, sockets };
}

/** Lets pending promise callbacks (the async getToken) run. */
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}

export const ack = (seq, resumed = false) => ({
  v: 1, type: 'ack', event: 'auth.ok', guildId: '1', seq, resumed,
});
export const snapshot = (seq, rooms) => ({ v: 1, type: 'snapshot', seq, payload: { rooms } });
export const event = (seq, name, payload) => ({
  v: 1, type: 'event', event: name, payload: { guildId: '1', ...payload }, ts: 0, seq,
});
