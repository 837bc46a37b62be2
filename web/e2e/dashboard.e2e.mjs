// Browser end-to-end test of the demo dashboard, in headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core.
//
//   node web/e2e/dashboard.e2e.mjs <dashboard-url> [screenshot.png]
//
// Opens the dashboard, creates a room, makes a simulated user join it and move, drops the
// worker's gateway connection, drops the page's own WebSocket, restarts the hub, sends op 7,
// mutes a user (no event), deletes a room "in Discord", ends one through the hub API, and
// checks that the page holds exactly the members discord-sim says are in voice and that its
// client saw every event seq exactly once with no gap after its one snapshot. Exits 0 on success, 1 with a message
// otherwise. Every wait is on a condition (30 s), never a fixed sleep.

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const WAIT_MS = 30_000;
const GENERAL = '1200000000000000011'; // discord-sim's DEFAULT_VOICE_1_ID
const here = dirname(fileURLToPath(import.meta.url));
const url = process.argv[2];
const screenshot = resolve(process.argv[3] ?? resolve(here, '../../out/dashboard-e2e.png'));
if (!url) {
  console.error('usage: node dashboard.e2e.mjs <dashboard-url> [screenshot.png]');
  process.exit(2);
}

function step(text) {
  console.log(`e2e: ${text}`);
}

/** Waits until the user is listed (or not) in the room's card. */
async function waitMember(page, channelId, userId, present) {
  await page.waitForFunction(
    ([id, user, want]) => {
      const card = document.querySelector(`.room[data-channel-id="${id}"]`);
      const members = card ? card.dataset.members.split(',') : [];
      return members.includes(user) === want;
    },
    [channelId, userId, present],
    { timeout: WAIT_MS },
  );
}

/** Waits until the client is live again on a socket newer than `count`. */
async function waitLiveAfter(page, socketCount) {
  await page.waitForFunction(
    (count) => window.__covenSockets.length > count && window.__coven.state === 'live',
    socketCount,
    { timeout: WAIT_MS },
  );
}

/**
 * Waits until the page's rooms hold exactly the users discord-sim has in voice, then checks
 * them against `expect` (channelId -> sorted user ids; rooms with members only).
 */
async function matchesTruth(page, expect) {
  step('the page matches what discord-sim says is in voice');
  await page.waitForFunction(async () => {
    const truth = await (await fetch('/demo/state')).json();
    const want = new Map();
    for (const v of truth.voiceStates) {
      if (!want.has(v.channelId)) want.set(v.channelId, []);
      want.get(v.channelId).push(v.userId);
    }
    const have = new Map();
    for (const [id, r] of window.__coven.rooms) if (r.members.size) have.set(id, [...r.members]);
    const norm = (m) => JSON.stringify([...m.entries()].map(([k, v]) => [k, v.sort()]).sort());
    return norm(want) === norm(have);
  }, null, { timeout: WAIT_MS, polling: 250 });
  const members = await page.evaluate(() => Object.fromEntries(
    [...window.__coven.rooms].filter(([, r]) => r.members.size).map(([id, r]) => [id, [...r.members].sort()])));
  const norm = (o) => JSON.stringify(Object.entries(o).sort());
  if (norm(members) !== norm(expect)) {
    throw new Error(`members ${JSON.stringify(members)}, expected ${JSON.stringify(expect)}`);
  }
}

async function control(page, action, body) {
  const answer = await page.evaluate(async ([a, b]) => {
    const res = await fetch(`/demo/${a}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(b),
    });
    return { status: res.status, body: await res.json() };
  }, [action, body]);
  if (answer.status !== 200) throw new Error(`${action}: ${answer.status} ${JSON.stringify(answer.body)}`);
}

async function run(page) {
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));

  step(`open ${url}`);
  await page.goto(url);
  await page.waitForFunction(() => window.__coven?.state === 'live' && window.__coven.seq !== null,
    null, { timeout: WAIT_MS });
  // The seeded users are in General once the worker's guild.sync reached the hub.
  await waitMember(page, GENERAL, '101', true);

  step('create a room');
  await page.fill('#room-name', 'e2e table');
  await page.click('#create-room');
  const room = await page.waitForFunction(() => {
    const card = [...document.querySelectorAll('.room')].find((c) => c.querySelector('h3')?.textContent === 'e2e table');
    return card?.dataset.channelId;
  }, null, { timeout: WAIT_MS }).then((handle) => handle.jsonValue());
  step(`room ${room}`);

  step('user 103 joins the room');
  await page.waitForSelector(`#channel-select option[value="${room}"]`, { state: 'attached', timeout: WAIT_MS });
  await page.selectOption('#user-select', '103');
  await page.selectOption('#channel-select', room);
  await page.click('#join');
  await waitMember(page, room, '103', true);

  step('user 103 moves to General');
  await page.selectOption('#channel-select', GENERAL);
  await page.click('#move');
  await waitMember(page, GENERAL, '103', true);
  await waitMember(page, room, '103', false);

  step("drop the worker's gateway connection, then user 104 joins while it reconnects");
  await page.click('#fault-drop-gateway');
  await control(page, 'join', { userId: '104', channelId: room });
  await waitMember(page, room, '104', true);

  step("drop the page's own WebSocket, then user 105 joins while it is down");
  let sockets = await page.evaluate(() => window.__covenSockets.length);
  await page.evaluate(() => window.__covenSockets.at(-1).close(4000, 'e2e drop'));
  await control(page, 'join', { userId: '105', channelId: room });
  await waitLiveAfter(page, sockets);
  await waitMember(page, room, '105', true);

  step('restart the hub (the client sees 1001 and resumes), then user 106 joins');
  sockets = await page.evaluate(() => window.__covenSockets.length);
  await control(page, 'fault/hub-restart', {});
  await control(page, 'join', { userId: '106', channelId: room });
  await waitLiveAfter(page, sockets);
  await waitMember(page, room, '106', true);

  step('user 101 leaves; op 7 to the worker; user 102 moves to the room');
  await control(page, 'leave', { userId: '101' });
  await control(page, 'fault/reconnect', {});
  await control(page, 'move', { userId: '102', channelId: room });
  await waitMember(page, GENERAL, '101', false);
  await waitMember(page, room, '102', true);

  step('user 102 mutes: a voice state update that must yield no event');
  const before = await page.evaluate(() => window.__coven.seq);
  await page.selectOption('#user-select', '102');
  await page.click('#mute');
  await page.waitForSelector(`.room[data-channel-id="${room}"] li[data-user-id="102"] .tag`, { timeout: WAIT_MS });

  step('a second room is created, joined, and deleted "in Discord"');
  await page.fill('#room-name', 'e2e doomed');
  await page.click('#create-room');
  const doomed = await page.waitForFunction(() => {
    const card = [...document.querySelectorAll('.room')].find((c) => c.querySelector('h3')?.textContent === 'e2e doomed');
    return card?.dataset.channelId;
  }, null, { timeout: WAIT_MS }).then((handle) => handle.jsonValue());
  await control(page, 'join', { userId: '101', channelId: doomed });
  await waitMember(page, doomed, '101', true);
  await page.click(`.room[data-channel-id="${doomed}"] .delete-channel`);
  await page.waitForSelector(`.room[data-channel-id="${doomed}"]`, { state: 'detached', timeout: WAIT_MS });
  const after = await page.evaluate(() => window.__coven.seq);
  // room.created, voice.joined, room.deleted (its member dropped with it): the mute added nothing.
  if (after - before !== 3) throw new Error(`expected 3 events after the mute, got ${after - before}`);

  await matchesTruth(page, { [GENERAL]: ['103'], [room]: ['102', '104', '105', '106'] });

  step('end the first room through the hub API (room.deleted), then create a last one');
  await page.click(`.room[data-channel-id="${room}"] .end-room`);
  await page.waitForSelector(`.room[data-channel-id="${room}"]`, { state: 'detached', timeout: WAIT_MS });
  await page.fill('#room-name', 'Friday commander night');
  await page.click('#create-room');
  const last = await page.waitForFunction(() => {
    const card = [...document.querySelectorAll('.room')].find((c) => c.querySelector('h3')?.textContent === 'Friday commander night');
    return card?.dataset.channelId;
  }, null, { timeout: WAIT_MS }).then((handle) => handle.jsonValue());
  // Ending the room disconnected its users in Discord; two of them join the new one.
  for (const user of ['104', '105']) await control(page, 'join', { userId: user, channelId: last });
  await matchesTruth(page, { [GENERAL]: ['103'], [last]: ['104', '105'] });

  step('every seq seen exactly once, no gap');
  const report = await page.evaluate(() => ({
    seen: window.__covenSeen,
    snapshots: window.__covenSnapshots,
    seq: window.__coven.seq,
    stats: window.__coven.stats,
    sockets: window.__covenSockets.length,
  }));
  const { seen, seq, stats } = report;
  if (seen.length === 0) throw new Error('no events seen');
  if (new Set(seen).size !== seen.length) throw new Error(`a seq was seen twice: ${seen.join(',')}`);
  for (let i = 1; i < seen.length; i += 1) {
    if (seen[i] !== seen[i - 1] + 1) throw new Error(`gap or disorder at ${seen[i - 1]} -> ${seen[i]}: ${seen.join(',')}`);
  }
  if (seen.at(-1) !== seq) throw new Error(`last seen ${seen.at(-1)} but client seq ${seq}`);
  if (report.snapshots.length !== 1 || seen[0] !== report.snapshots[0] + 1) {
    throw new Error(`events must follow the one snapshot: snapshots ${report.snapshots}, first event ${seen[0]}`);
  }
  if (stats.gaps || stats.duplicates || stats.snapshots !== 1) {
    throw new Error(`anomalies: ${JSON.stringify(stats)} (one snapshot expected: every reconnect resumed)`);
  }
  if (report.sockets < 3) throw new Error(`expected at least 3 websockets, saw ${report.sockets}`);
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);

  step('the worker is connected again (its health, shown in the header)');
  await page.waitForFunction(() => document.getElementById('worker-state').textContent.startsWith('connected'),
    null, { timeout: WAIT_MS });
  step(`seq ${seen[0]}..${seq} (${seen.length} events), ${report.sockets} websockets, stats ${JSON.stringify(stats)}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  // Without the background-networking flags Chromium keeps trying to reach Google's hosts,
  // which a closed network refuses (see the machine notes). --no-sandbox: CI runs as root.
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = null;
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
try {
  await run(page);
} catch (error) {
  failed = error;
} finally {
  try {
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    step(`screenshot ${screenshot}`);
  } catch (error) {
    console.error(`e2e: screenshot failed: ${error.message}`);
  }
  await browser.close();
}
if (failed) {
  console.error(`e2e: FAILED: ${failed.stack ?? failed}`);
  process.exit(1);
}
step('passed');
