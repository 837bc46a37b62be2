// The demo dashboard: a CovenClient showing the hub's rooms live, the hub's room API with
// the demo token, and the demo server's controls (simulated users, faults).
//
// For the browser test it records every event seq the client received in
// `window.__covenSeen` (raw, before de-duplication), the seq of every snapshot in
// `window.__covenSnapshots`, every WebSocket it opened in
// `window.__covenSockets`, and the client itself in `window.__coven`.

import { CovenClient } from './coven-client.js';

const USERS = new Map([
  ['101', 'Ayla'], ['102', 'Bram'], ['103', 'Cass'],
  ['104', 'Dario'], ['105', 'Esme'], ['106', 'Finn'],
]);
const LOG_MAX = 60;

const $ = (id) => document.getElementById(id);
const seen = [];
const sockets = [];
const snapshots = [];
window.__covenSeen = seen;
window.__covenSnapshots = snapshots;
window.__covenSockets = sockets;

let config = null;
let simState = { channels: [], voiceStates: [], worker: null, hubUp: false };
const createdByMe = new Set();
const names = new Map(); // channelId -> name, kept after a room is gone (for the log)
let heartbeatAcks = true;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'className') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function userLabel(id) {
  return USERS.has(id) ? `${USERS.get(id)} (${id})` : id;
}

function log(text, kind = 'info') {
  const list = $('log');
  const time = new Date().toLocaleTimeString([], { hour12: false });
  list.prepend(el('li', { className: kind }, el('time', {}, time), ' ', text));
  while (list.children.length > LOG_MAX) list.lastElementChild.remove();
}

// ---- talking to the demo server and the hub -------------------------------------------

async function fetchConfig() {
  const res = await fetch('/demo/config.json', { cache: 'no-store' });
  if (!res.ok) throw new Error(`config: HTTP ${res.status}`);
  config = await res.json();
  return config;
}

async function control(action, body = {}) {
  const res = await fetch(`/demo/${action}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    log(`${action}: ${answer.message ?? res.status}`, 'error');
    return null;
  }
  log(`demo: ${action}${body.userId ? ` ${userLabel(body.userId)}` : ''}`, 'control');
  refreshSimState();
  return answer;
}

async function hubApi(method, path, body) {
  const send = async () => fetch(`${config.hubUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${config.token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let res = await send();
  if (res.status === 401) {
    await fetchConfig(); // a fresh token
    res = await send();
  }
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    log(`${method} ${path}: ${res.status} ${answer.message ?? ''}`, 'error');
    return null;
  }
  return answer;
}

async function refreshSimState() {
  try {
    const res = await fetch('/demo/state', { cache: 'no-store' });
    if (res.ok) simState = await res.json();
  } catch {
    // the demo is stopping; the badges show it
    simState = { ...simState, worker: null, hubUp: false };
  }
  renderControls();
  renderStatus();
  renderRooms();
}

// ---- rendering --------------------------------------------------------------------------

function renderStatus() {
  const state = client?.state ?? 'connecting';
  const badge = $('conn-state');
  badge.textContent = state === 'live' ? 'live' : state;
  badge.className = `badge ${state === 'live' ? 'ok' : state === 'unauthorized' ? 'bad' : 'warn'}`;
  $('conn-seq').textContent = client?.seq ?? '–';
  $('conn-events').textContent = String(client?.stats.events ?? 0);
  const stats = client?.stats;
  const anomalies = [];
  if (stats?.duplicates) anomalies.push(`${stats.duplicates} duplicate`);
  if (stats?.gaps) anomalies.push(`${stats.gaps} gap`);
  if (stats && stats.snapshots > 1) anomalies.push(`${stats.snapshots - 1} re-snapshot`);
  const anomalyNode = $('conn-anomalies');
  anomalyNode.textContent = anomalies.length ? anomalies.join(', ') : 'none';
  anomalyNode.className = anomalies.length ? 'warn-text' : '';

  const worker = simState.worker;
  const workerBadge = $('worker-state');
  workerBadge.textContent = worker ? `${worker.state.replaceAll('_', ' ')} · gateway seq ${worker.seq ?? '–'}` : '?';
  workerBadge.className = `badge ${worker?.state === 'connected' ? 'ok' : 'warn'}`;
  const hubBadge = $('hub-state');
  hubBadge.textContent = simState.hubUp ? 'up' : 'restarting';
  hubBadge.className = `badge ${simState.hubUp ? 'ok' : 'warn'}`;
  $('fault-heartbeat-ack').textContent = heartbeatAcks ? 'Stop heartbeat ACKs' : 'Resume heartbeat ACKs';
}

/** The hub names the rooms it created; other voice channels are named from the sim. */
function roomName(channelId, room) {
  return room?.name ?? names.get(channelId) ?? simState.channels.find((c) => c.id === channelId)?.name ?? channelId;
}

function mutedUsers() {
  return new Set(simState.voiceStates.filter((v) => v.mute).map((v) => v.userId));
}

function renderRooms() {
  const container = $('rooms');
  const muted = mutedUsers();
  const rooms = client ? [...client.rooms.entries()] : [];
  rooms.sort(([a, ra], [b, rb]) => (ra.name ?? a).localeCompare(rb.name ?? b) || a.localeCompare(b));
  const cards = rooms.map(([channelId, room]) => {
    const members = [...room.members].sort();
    const list = members.length
      ? el('ul', { className: 'members' }, ...members.map((id) => el('li', { dataset: { userId: id } },
        userLabel(id), ...(muted.has(id) ? [' ', el('span', { className: 'tag' }, 'muted')] : []))))
      : el('p', { className: 'empty' }, 'nobody here');
    const actions = el('div', { className: 'card-actions' });
    if (createdByMe.has(channelId)) {
      actions.append(el('button', { type: 'button', className: 'end-room', onclick: () => endRoom(channelId) }, 'End room'));
    }
    actions.append(el('button', {
      type: 'button',
      className: 'delete-channel secondary',
      title: 'delete the channel in the (simulated) Discord client',
      onclick: () => control('delete-channel', { channelId }),
    }, 'Delete in Discord'));
    return el('article', { className: 'room', dataset: { channelId, members: members.join(',') } },
      el('h3', {}, roomName(channelId, room)),
      el('p', { className: 'id' }, channelId),
      list,
      actions);
  });
  container.replaceChildren(...(cards.length ? cards : [el('p', { className: 'empty' }, 'No rooms yet.')]));
}

function renderControls() {
  const userSelect = $('user-select');
  if (userSelect.options.length === 0) {
    for (const [id, name] of USERS) userSelect.append(el('option', { value: id }, `${name} (${id})`));
  }
  const channelSelect = $('channel-select');
  const current = channelSelect.value;
  const options = simState.channels.map((c) => el('option', { value: c.id }, c.name));
  channelSelect.replaceChildren(...options);
  if (simState.channels.some((c) => c.id === current)) channelSelect.value = current;
}

// ---- actions ------------------------------------------------------------------------------

async function createRoom(event) {
  event.preventDefault();
  const name = $('room-name').value.trim();
  const room = await hubApi('POST', '/create-room', name ? { name } : {});
  if (room) {
    createdByMe.add(room.channelId);
    $('room-name').value = '';
    log(`created ${room.name} (${room.channelId})`, 'control');
    await refreshSimState();
    $('channel-select').value = room.channelId;
  }
}

async function endRoom(channelId) {
  if (await hubApi('DELETE', `/end-room/${channelId}`)) {
    createdByMe.delete(channelId);
    log(`ended ${roomName(channelId)}`, 'control');
  }
}

function selected() {
  return { userId: $('user-select').value, channelId: $('channel-select').value };
}

function wire() {
  $('create-form').addEventListener('submit', createRoom);
  $('join').addEventListener('click', () => control('join', selected()));
  $('move').addEventListener('click', () => control('move', selected()));
  $('leave').addEventListener('click', () => control('leave', { userId: selected().userId }));
  $('mute').addEventListener('click', () => {
    const { userId } = selected();
    control('mute', { userId, mute: !mutedUsers().has(userId) });
  });
  $('fault-drop-gateway').addEventListener('click', () => control('fault/drop-gateway'));
  $('fault-reconnect').addEventListener('click', () => control('fault/reconnect'));
  $('fault-invalid-session').addEventListener('click', () => control('fault/invalid-session', { resumable: true }));
  $('fault-invalid-session-new').addEventListener('click', () => control('fault/invalid-session', { resumable: false }));
  $('fault-heartbeat-ack').addEventListener('click', async () => {
    if (await control('fault/heartbeat-ack', { enabled: !heartbeatAcks })) heartbeatAcks = !heartbeatAcks;
    renderStatus();
  });
  $('fault-hub-restart').addEventListener('click', () => control('fault/hub-restart'));
  $('fault-drop-ws').addEventListener('click', () => {
    const socket = sockets.at(-1);
    if (socket && socket.readyState <= 1) {
      log('closing this page\'s WebSocket', 'control');
      socket.close(4000, 'dropped from the dashboard');
    }
  });
}

// ---- the client -----------------------------------------------------------------------------

/** The browser WebSocket, remembering each instance (for the drop button and the test). */
class TrackedWebSocket extends WebSocket {
  constructor(url) {
    super(url);
    sockets.push(this);
  }
}

function describe(message) {
  const p = message.payload ?? {};
  const user = p.userId ? userLabel(p.userId) : '';
  const room = roomName(p.channelId, client?.rooms.get(p.channelId));
  switch (message.event) {
    case 'room.created': return `room.created ${p.name ?? p.channelId}`;
    case 'room.deleted': return `room.deleted ${room}`;
    case 'voice.joined': return `voice.joined ${user} → ${room}`;
    case 'voice.left': return `voice.left ${user} ← ${room}`;
    default: return message.event;
  }
}

let client = null;

async function main() {
  wire();
  renderControls();
  await fetchConfig();
  await refreshSimState();
  client = new CovenClient({
    url: config.wsUrl,
    WebSocket: TrackedWebSocket,
    getToken: async () => (await fetchConfig()).token,
    onMessage: (message) => {
      if (message.type === 'event') seen.push(message.seq);
      if (message.type === 'snapshot') snapshots.push(message.seq);
      for (const r of message.payload?.rooms ?? [message.payload ?? {}]) {
        if (typeof r.name === 'string' && typeof r.channelId === 'string') names.set(r.channelId, r.name);
      }
      if (message.type === 'ack') log(`auth.ok seq ${message.seq}${message.resumed ? ', resumed' : ''}`, 'hub');
    },
    onSnapshot: (snapshot) => {
      log(`snapshot at seq ${snapshot.seq}: ${snapshot.payload.rooms.length} rooms`, 'hub');
      renderRooms();
      renderStatus();
    },
    onEvent: (event) => {
      log(`#${event.seq} ${describe(event)}`, 'event');
      if (event.event === 'room.deleted') createdByMe.delete(event.payload.channelId);
      renderRooms();
      renderStatus();
    },
    onState: (state) => {
      log(`client ${state}`, state === 'live' ? 'hub' : 'warn');
      renderStatus();
    },
  });
  window.__coven = client;
  setInterval(refreshSimState, 1000);
}

main().catch((error) => log(`dashboard failed to start: ${error.message}`, 'error'));
