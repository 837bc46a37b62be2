// Unit tests for coven-client.js: a fake WebSocket and fake timers, no network.
// Run: node --test web/test/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CloseCode, CovenClient, State, applyEvent, backoffDelay } from '../coven-client.js';
import { FakeTimers, ack, event, fakeWebSocketClass, flush, snapshot } from './fakes.mjs';

const ROOM = '900';
const OTHER = '901';

/** A client on fakes; `tokens` are handed out by getToken in order. */
function setup({ tokens = ['t1', 't2', 't3'], random = () => 0.5, ...extra } = {}) {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const states = [];
  const events = [];
  let tokenCalls = 0;
  const client = new CovenClient({
    url: 'ws://hub.test/ws',
    getToken: async () => tokens[tokenCalls++],
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
    WebSocket: FakeWebSocket,
    random,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    ...extra,
  });
  return { client, timers, sockets, states, events, tokenCalls: () => tokenCalls };
}

/** Opens the newest socket, acks it and sends a snapshot with one room. */
async function goLive(t, { seq = 10, members = ['1'] } = {}) {
  await flush();
  const socket = t.sockets.at(-1);
  socket.open();
  socket.receive(ack(seq));
  socket.receive(snapshot(seq, [{ channelId: ROOM, name: 'Table 1', members }]));
  return socket;
}

const members = (client, id) => [...(client.rooms.get(id)?.members ?? [])].sort();

test('authenticates first, then applies the snapshot and events in order', async () => {
  const t = setup();
  assert.equal(t.client.state, State.CONNECTING);
  const socket = await goLive(t);
  assert.deepEqual(socket.sent, [{ type: 'auth', token: 't1' }], 'no since without a seq');
  assert.deepEqual(t.states, [State.AUTHENTICATING, State.LIVE]);
  assert.equal(t.client.seq, 10);
  assert.deepEqual(members(t.client, ROOM), ['1']);
  assert.equal(t.client.rooms.get(ROOM).name, 'Table 1');

  socket.receive(event(11, 'voice.joined', { channelId: ROOM, userId: '2' }));
  socket.receive(event(12, 'room.created', { channelId: OTHER, name: 'Table 2' }));
  socket.receive(event(13, 'voice.left', { channelId: ROOM, userId: '1' }));
  socket.receive(event(14, 'voice.joined', { channelId: OTHER, userId: '1' }));
  assert.equal(t.client.seq, 14);
  assert.deepEqual(members(t.client, ROOM), ['2']);
  assert.deepEqual(members(t.client, OTHER), ['1']);
  assert.deepEqual(t.events.map((e) => e.seq), [11, 12, 13, 14]);
  assert.equal(t.client.stats.events, 4);
});

test('an event at or below the last seq is ignored', async () => {
  const t = setup();
  const socket = await goLive(t);
  socket.receive(event(11, 'voice.joined', { channelId: ROOM, userId: '2' }));
  socket.receive(event(11, 'voice.joined', { channelId: ROOM, userId: '2' }));
  socket.receive(event(9, 'voice.left', { channelId: ROOM, userId: '1' }));
  assert.equal(t.client.seq, 11);
  assert.deepEqual(members(t.client, ROOM), ['1', '2']);
  assert.equal(t.client.stats.duplicates, 2);
  assert.equal(t.events.length, 1);
});

test('a seq gap drops the socket and resumes from the last applied seq', async () => {
  const t = setup();
  const socket = await goLive(t);
  socket.receive(event(11, 'voice.joined', { channelId: ROOM, userId: '2' }));
  socket.receive(event(13, 'voice.left', { channelId: ROOM, userId: '2' }));
  assert.equal(socket.closedWith.code, CloseCode.CLIENT_GAP);
  assert.equal(t.client.seq, 11, 'the event after the gap is not applied');
  assert.equal(t.client.stats.gaps, 1);
  assert.equal(t.client.state, State.BACKOFF);

  t.timers.tick(500);
  await flush();
  assert.equal(t.client.state, State.RESUMING);
  const next = t.sockets.at(-1);
  assert.notEqual(next, socket);
  next.open();
  assert.deepEqual(next.sent, [{ type: 'auth', token: 't1', since: 11 }]);
  next.receive(ack(13, true));
  next.receive(event(12, 'voice.joined', { channelId: OTHER, userId: '3' }));
  next.receive(event(13, 'voice.left', { channelId: ROOM, userId: '2' }));
  assert.equal(t.client.seq, 13);
  assert.deepEqual(members(t.client, ROOM), ['1']);
  assert.deepEqual(members(t.client, OTHER), ['3']);
});

for (const code of [1001, 1006, 1011, 1013, 4408]) {
  test(`close ${code} is transient: back off, then resume with since and the same token`, async () => {
    const t = setup();
    const socket = await goLive(t);
    socket.receive(event(11, 'voice.joined', { channelId: ROOM, userId: '2' }));
    socket.serverClose(code);
    assert.equal(t.client.state, State.BACKOFF);
    assert.deepEqual(t.timers.delays, [250], 'random 0.5 x base 500');
    t.timers.tick(250);
    await flush();
    const next = t.sockets.at(-1);
    next.open();
    assert.deepEqual(next.sent, [{ type: 'auth', token: 't1', since: 11 }]);
    assert.equal(t.tokenCalls(), 1);
    next.receive(ack(11, true));
    assert.equal(t.client.state, State.LIVE);
    assert.deepEqual(members(t.client, ROOM), ['1', '2'], 'rooms kept across a resume');
  });
}

test('backoff grows exponentially with full jitter, is capped, and resets once live', async () => {
  const t = setup({ random: () => 0.999, backoffBaseMs: 100, backoffCapMs: 1000 });
  await flush();
  const seen = [];
  for (let i = 0; i < 6; i += 1) {
    t.sockets.at(-1).serverClose(1006);
    seen.push(t.timers.delays[0]);
    t.timers.tick(t.timers.delays[0]);
    await flush();
  }
  assert.deepEqual(seen, [99, 199, 399, 799, 999, 999]);
  await goLive(t);
  t.sockets.at(-1).serverClose(1006);
  assert.deepEqual(t.timers.delays, [99], 'attempts reset after an ack');
  assert.equal(t.client.stats.reconnects, 7);
});

test('backoffDelay is uniform in [0, min(cap, base * 2^attempt))', () => {
  assert.equal(backoffDelay(0, 500, 30_000, () => 0), 0);
  assert.equal(backoffDelay(3, 500, 30_000, () => 0.5), 2000);
  assert.equal(backoffDelay(20, 500, 30_000, () => 0.5), 15_000);
  assert.equal(backoffDelay(10_000, 500, 30_000, () => 0.999), 29_970);
});

test('4401 asks for a fresh token and reconnects with it', async () => {
  const t = setup();
  const socket = await goLive(t);
  socket.serverClose(CloseCode.UNAUTHORIZED);
  await flush();
  assert.equal(t.tokenCalls(), 2);
  const next = t.sockets.at(-1);
  next.open();
  assert.deepEqual(next.sent, [{ type: 'auth', token: 't2', since: 10 }]);
  next.receive(ack(10, true));
  assert.equal(t.client.state, State.LIVE);
});

test('a fresh token refused again stops with state unauthorized', async () => {
  const t = setup();
  await flush();
  t.sockets.at(-1).open();
  t.sockets.at(-1).serverClose(CloseCode.UNAUTHORIZED);
  await flush();
  t.sockets.at(-1).open();
  t.sockets.at(-1).serverClose(CloseCode.UNAUTHORIZED);
  await flush();
  assert.equal(t.client.state, State.UNAUTHORIZED);
  assert.equal(t.sockets.length, 2);
  assert.equal(t.timers.size, 0, 'no retry pending');
});

test('no token from getToken stops with state unauthorized', async () => {
  for (const getToken of [async () => '', async () => null, async () => { throw new Error('x'); }]) {
    const t = setup({ getToken });
    await flush();
    assert.equal(t.client.state, State.UNAUTHORIZED);
    assert.equal(t.sockets.length, 0);
  }
});

test('a 4401 whose refresh yields nothing stops with state unauthorized', async () => {
  const t = setup({ tokens: ['t1'] });
  const socket = await goLive(t);
  socket.serverClose(CloseCode.UNAUTHORIZED);
  await flush();
  assert.equal(t.client.state, State.UNAUTHORIZED);
  assert.equal(t.sockets.length, 1);
});

test('a snapshot after a failed resume replaces every room and the seq', async () => {
  const t = setup();
  const socket = await goLive(t);
  socket.serverClose(1001);
  t.timers.tick(1000);
  await flush();
  const next = t.sockets.at(-1);
  next.open();
  next.receive(ack(50, false));
  next.receive(snapshot(50, [{ channelId: OTHER, name: 'Table 2', members: ['7'] }]));
  assert.equal(t.client.seq, 50);
  assert.equal(t.client.rooms.has(ROOM), false);
  assert.deepEqual(members(t.client, OTHER), ['7']);
  next.receive(event(51, 'voice.joined', { channelId: OTHER, userId: '8' }));
  assert.deepEqual(members(t.client, OTHER), ['7', '8']);
});

test('room.deleted drops the room with its members', async () => {
  const t = setup();
  const socket = await goLive(t, { members: ['1', '2'] });
  socket.receive(event(11, 'room.deleted', { channelId: ROOM }));
  assert.equal(t.client.rooms.has(ROOM), false);
  socket.receive(event(12, 'voice.joined', { channelId: OTHER, userId: '1' }));
  assert.deepEqual(members(t.client, OTHER), ['1'], 'a join creates an unknown channel');
  assert.equal(t.client.rooms.get(OTHER).name, null);
});

test('close() stops for good', async () => {
  const t = setup();
  const socket = await goLive(t);
  t.client.close();
  assert.equal(socket.closedWith.code, 1000);
  assert.equal(t.client.state, State.CLOSED);
  socket.serverClose(1006); // a late close event must not revive it
  t.timers.tick(60_000);
  await flush();
  assert.equal(t.sockets.length, 1);
  assert.equal(t.client.state, State.CLOSED);
});

test('close() during backoff cancels the retry', async () => {
  const t = setup();
  const socket = await goLive(t);
  socket.serverClose(1006);
  t.client.close();
  t.timers.tick(60_000);
  await flush();
  assert.equal(t.sockets.length, 1);
});

test('not live within connectTimeoutMs: drop and retry', async () => {
  const t = setup({ connectTimeoutMs: 5000 });
  await flush();
  const socket = t.sockets.at(-1);
  socket.open(); // auth sent, but no ack ever comes
  t.timers.tick(5000);
  assert.equal(socket.closedWith.code, CloseCode.CLIENT_STALL);
  assert.equal(t.client.state, State.BACKOFF);
  t.timers.tick(250);
  await flush();
  assert.equal(t.sockets.length, 2);
});

test('events before any snapshot are not applied', async () => {
  const t = setup();
  await flush();
  const socket = t.sockets.at(-1);
  socket.open();
  socket.receive(ack(3));
  socket.receive(event(3, 'voice.joined', { channelId: ROOM, userId: '1' }));
  assert.equal(t.client.rooms.size, 0);
  socket.receive(snapshot(3, []));
  socket.receive(event(4, 'voice.joined', { channelId: ROOM, userId: '1' }));
  assert.deepEqual(members(t.client, ROOM), ['1']);
});

test('a throwing callback does not break the client', async () => {
  const errors = console.error;
  console.error = () => {};
  try {
    const t = setup({ onEvent: () => { throw new Error('boom'); } });
    const socket = await goLive(t);
    socket.receive(event(11, 'voice.joined', { channelId: ROOM, userId: '2' }));
    socket.receive(event(12, 'voice.joined', { channelId: ROOM, userId: '3' }));
    assert.equal(t.client.seq, 12);
  } finally {
    console.error = errors;
  }
});

test('garbage and unknown messages are ignored', async () => {
  const t = setup();
  const socket = await goLive(t);
  socket.onmessage({ data: 'not json' });
  socket.receive({ type: 'future-thing', seq: 99 });
  socket.receive(event(11, 'room.renamed', { channelId: ROOM }));
  assert.equal(t.client.seq, 11, 'an unknown event still advances the seq');
  assert.deepEqual(members(t.client, ROOM), ['1']);
});

test('applyEvent handles the four contract events', () => {
  const rooms = new Map();
  applyEvent(rooms, 'room.created', { channelId: 'a', name: 'A' });
  applyEvent(rooms, 'voice.joined', { channelId: 'a', userId: 'u' });
  applyEvent(rooms, 'voice.left', { channelId: 'a', userId: 'u' });
  assert.deepEqual([...rooms.get('a').members], []);
  applyEvent(rooms, 'room.deleted', { channelId: 'a' });
  assert.equal(rooms.size, 0);
  applyEvent(rooms, 'voice.left', { channelId: 'zzz', userId: 'u' });
  assert.equal(rooms.size, 0);
});

test('constructor refuses missing url or getToken', () => {
  const { FakeWebSocket } = fakeWebSocketClass();
  assert.throws(() => new CovenClient({ getToken: () => 't', WebSocket: FakeWebSocket }), TypeError);
  assert.throws(() => new CovenClient({ url: 'ws://x', WebSocket: FakeWebSocket }), TypeError);
});

test('reconnect() while a token is being fetched opens one socket, not two', async () => {
  let release;
  const pending = new Promise((resolve) => { release = resolve; });
  const t = setup({ getToken: () => pending });
  t.client.reconnect();
  release('t1');
  await flush();
  assert.equal(t.sockets.length, 1);
  t.sockets[0].open();
  assert.deepEqual(t.sockets[0].sent, [{ type: 'auth', token: 't1' }]);
});
