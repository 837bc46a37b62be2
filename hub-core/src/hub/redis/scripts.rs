//! The Lua scripts that make each stream step atomic inside Redis.
//!
//! Redis runs a script without interleaving any other command, so "check the state version,
//! append the frames with their seqs, bump the head, store the new presence, claim the
//! dedupe keys" is one indivisible step for every replica (the same idea as Centrifugo's
//! Redis engine, which assigns the offset and appends in one script).

use std::sync::LazyLock;

use ::redis::Script;

/// Creates the guild's state hash if it is missing (a fresh Redis, or one restarted without
/// persistence), then returns `[epoch, ver, head, presence]`.
///
/// KEYS: state, stream. ARGV: new epoch, head to start from (the replica's last known seq, so
/// seqs keep increasing even when Redis lost everything).
pub(super) static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  local head = tonumber(ARGV[2])
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if last[1] then
    local s = tonumber(string.match(last[1][1], '^(%d+)'))
    if s and s > head then head = s end
  end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'ver', '0',
    'head', string.format('%d', head), 'presence', '[]')
end
return redis.call('HMGET', KEYS[1], 'epoch', 'ver', 'head', 'presence')
",
    )
});

/// Commits one ingested event: refuses a seen dedupe key (`{'dup'}`) or a state that changed
/// since it was read (`{'conflict'}`, the caller reloads and recomputes); otherwise appends
/// each frame with id `<seq>-0` (the seq *is* the stream id), trims the stream, bumps `ver`
/// and `head`, stores the new presence and claims the dedupe keys with their expiries.
/// Returns `{'ok', ver, head}`.
///
/// KEYS: state, stream, dedupe keys... ARGV: expected ver (`*` = any), expected epoch
/// (`*` = any), new presence (empty = unchanged), MAXLEN, ts ms, number of dedupe keys n,
/// n expiries in ms, then the frames.
pub(super) static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ndk = tonumber(ARGV[6])
for i = 1, ndk do
  if redis.call('EXISTS', KEYS[2 + i]) == 1 then return {'dup'} end
end
local st = redis.call('HMGET', KEYS[1], 'epoch', 'ver', 'head')
if not st[1] or (ARGV[1] ~= '*' and st[2] ~= ARGV[1]) or (ARGV[2] ~= '*' and st[1] ~= ARGV[2]) then
  return {'conflict'}
end
local ver = tonumber(st[2])
local head = tonumber(st[3])
local first = 7 + ndk
local nframes = #ARGV - first + 1
for i = 0, nframes - 1 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], string.format('%d-0', head + 1 + i),
    'f', ARGV[first + i], 't', ARGV[5])
end
if nframes > 0 or ARGV[3] ~= '' then
  ver = ver + 1
  head = head + nframes
  redis.call('HSET', KEYS[1], 'ver', string.format('%d', ver), 'head', string.format('%d', head))
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'presence', ARGV[3]) end
end
for i = 1, ndk do
  redis.call('SET', KEYS[2 + i], '1', 'PX', ARGV[6 + i])
end
return {'ok', string.format('%d', ver), string.format('%d', head)}
",
    )
});

/// The events after `since` together with the head they lead to, read atomically:
/// `{}` (no state), `{epoch, head, 'tooold'}`, or `{epoch, head, 'ok', entries}`.
///
/// KEYS: state, stream. ARGV: since, most events a replay may span.
pub(super) static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local st = redis.call('HMGET', KEYS[1], 'epoch', 'head')
if not st[1] then return {} end
local head = tonumber(st[2])
local since = tonumber(ARGV[1])
if since > head or head - since > tonumber(ARGV[2]) then return {st[1], st[2], 'tooold'} end
if since == head then return {st[1], st[2], 'ok', {}} end
return {st[1], st[2], 'ok', redis.call('XRANGE', KEYS[2], string.format('%d-0', since + 1), '+')}
",
    )
});
