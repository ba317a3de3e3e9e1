// EVAL for the embedded backend. ioredis-mock runs Lua in fengari but its `redis` object is thin
// (no error_reply/status_reply, errors lost, Lua 5.3 number quirks, no cjson). Its VM does expose
// a synchronous `call` into the mock's commands, so a prelude builds Redis's scripting API on top:
// `redis.call` asks the bridge (a JS hook reached through fengari-interop) to validate the command
// and shape the reply as RESP, and the script's return value is converted back to RESP following
// Redis's Lua-to-RESP rules, with bulk strings hex-encoded so any bytes survive.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const interopPath = require.resolve("fengari-interop");

// fengari's integers are 32-bit, so a millisecond timestamp is a float there, and Lua 5.3 prints
// integral floats as "1764180000005.0" where Redis's Lua 5.1 prints "1764180000005". Format them
// as 5.1 does when Lua converts a number (concatenation, lua_tostring); the prelude's tostring
// does the same. Process-wide, but only ioredis-mock uses fengari here.
interface TValue {
  value: number;
  ttisinteger(): boolean;
  ttisfloat(): boolean;
  setivalue(n: number): void;
}
require("fengari"); // loads lobject.js in the order its circular requires need
const lobject = require("fengari/src/lobject.js") as { luaO_tostring: (L: unknown, o: TValue) => void };
const luaOToString = lobject.luaO_tostring;
lobject.luaO_tostring = (L, o) => {
  if (o.ttisfloat() && Number.isInteger(o.value) && Math.abs(o.value) < 1e14) o.setivalue(o.value);
  luaOToString(L, o);
};

export interface ScriptHooks {
  /**
   * Plans a command called from a script: "R" + the RESP reply (an error, or a reply computed
   * without the mock), or "C" + the command to hand the mock, as a RESP array.
   */
  prepare(this: unknown, ...cmd: unknown[]): string;
  /** Shapes what the mock returned for a command as RESP text. */
  reply(this: unknown, name: string, raw: unknown): string;
  /** JSON text as a Lua table constructor (`N` stands for cjson.null), or null when malformed. */
  jsonToLua(this: unknown, json: string): string | null;
  sha1hex(this: unknown, s: string): string;
}

const HOOKS_KEY = "__celeriacRedisBridgeHooks";
type HookRegistry = Record<string, ScriptHooks>;

export function registerHooks(id: string, hooks: ScriptHooks): () => void {
  const g = globalThis as unknown as Record<string, HookRegistry | undefined>;
  const registry = (g[HOOKS_KEY] ??= {});
  registry[id] = hooks;
  return () => void delete registry[id];
}

const luaString = (s: string) => JSON.stringify(s); // ASCII-safe here: ids, paths, hex shas

/** The Lua source handed to ioredis-mock's EVAL for a user script. */
export function composeScript(id: string, sha: string, source: string): string {
  // Redis reads a `#!lua flags=…` first line as script flags, not code; Lua's load() would not.
  // Blanked rather than removed, so error line numbers still match the script's.
  const script = source.replace(/^#![^\n]*/, "");
  let eq = "";
  while (`${script}]`.includes(`]${eq}]`)) eq += "=";
  return `${PRELUDE}
return __run(${luaString(interopPath)}, ${luaString(id)}, ${luaString(sha)}, [${eq}[
${script}]${eq}])`;
}

const PRELUDE = String.raw`
local __mockcall = call
call = nil
unpack = unpack or table.unpack
loadstring = loadstring or load

local function __hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function __line(s) return (tostring(s):gsub("[\r\n]+", " ")) end

-- Lua value to RESP, as Redis converts a script's return value.
local function __enc(v, out)
  local t = type(v)
  if t == "string" then out[#out + 1] = "$" .. (#v * 2) .. "\r\n" .. __hex(v) .. "\r\n"
  elseif t == "number" then
    local n = v >= 0 and math.floor(v) or math.ceil(v)
    out[#out + 1] = ":" .. string.format("%.0f", n) .. "\r\n"
  elseif t == "boolean" then out[#out + 1] = v and ":1\r\n" or "$-1\r\n"
  elseif t == "table" then
    if type(v.err) == "string" then out[#out + 1] = "-" .. __line(v.err) .. "\r\n"
    elseif type(v.ok) == "string" then out[#out + 1] = "+" .. __line(v.ok) .. "\r\n"
    else
      local n = 0
      while v[n + 1] ~= nil do n = n + 1 end
      out[#out + 1] = "*" .. n .. "\r\n"
      for i = 1, n do __enc(v[i], out) end
    end
  else out[#out + 1] = "$-1\r\n" end
end

-- RESP from the bridge to Lua values, as redis.call returns them.
local function __dec(s, pos)
  local e = s:find("\r\n", pos, true)
  local head, kind = s:sub(pos + 1, e - 1), s:sub(pos, pos)
  pos = e + 2
  if kind == ":" then return math.tointeger(tonumber(head)) or tonumber(head), pos
  elseif kind == "+" then return { ok = head }, pos
  elseif kind == "-" then return { err = head }, pos
  elseif kind == "$" then
    local n = tonumber(head)
    if n < 0 then return false, pos end
    return s:sub(pos, pos + n - 1), pos + n + 2
  else
    local n = tonumber(head)
    if n < 0 then return false, pos end
    local t = {}
    for i = 1, n do t[i], pos = __dec(s, pos) end
    return t, pos
  end
end

local function __arg(v)
  if type(v) == "number" then
    local i = math.tointeger(v)
    return i and tostring(i) or string.format("%.17g", v)
  end
  return v
end

function __run(interop, id, sha, src)
  local js = package.loadlib(interop, "luaopen_js")()
  local H = js.global.__celeriacRedisBridgeHooks[id]

  local raised, line
  local function exec(raise, ...)
    local n = select("#", ...)
    local cmd = {}
    for i = 1, n do
      local a = select(i, ...)
      if type(a) ~= "string" and type(a) ~= "number" then cmd = nil; break end
      cmd[i] = __arg(a)
    end
    local plan = cmd and H:prepare(unpack(cmd, 1, n))
    local r
    if not plan then r = { err = "ERR Lua redis lib command arguments must be strings or integers" }
    elseif plan:sub(1, 1) == "R" then r = __dec(plan, 2)
    else
      local c = __dec(plan, 2)
      r = __dec(H:reply(c[1], __mockcall(true, unpack(c))), 1)
    end
    if raise and type(r) == "table" and r.err then
      -- Redis 7 raises the bare message: pcall(redis.call, …) sees a string.
      raised = r.err
      error(r.err, 0)
    end
    return r
  end

  local redis = {
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
    REDIS_VERSION = "7.0.0", REDIS_VERSION_NUM = 0x070000,
  }
  function redis.call(...) return exec(true, ...) end
  function redis.pcall(...) return exec(false, ...) end
  function redis.error_reply(s) return { err = s } end
  function redis.status_reply(s) return { ok = s } end
  function redis.sha1hex(s) return H:sha1hex(s) end
  function redis.log() end
  function redis.setresp() end
  function redis.set_repl() end
  function redis.replicate_commands() return true end
  function redis.breakpoint() return false end
  function redis.debug() end

  local cjson = { null = setmetatable({}, { __tostring = function() return "null" end }) }
  local function jstr(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
      local m = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
      return m[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  end
  local function jenc(v)
    local t = type(v)
    if v == cjson.null or v == nil then return "null"
    elseif t == "boolean" then return tostring(v)
    elseif t == "number" then
      if v == math.floor(v) and math.abs(v) < 1e14 then return string.format("%.0f", v) end
      return string.format("%.14g", v)
    elseif t == "string" then return jstr(v)
    elseif t == "table" then
      local n, count = #v, 0
      for _ in pairs(v) do count = count + 1 end
      local parts = {}
      if n > 0 and n == count then
        for i = 1, n do parts[i] = jenc(v[i]) end
        return "[" .. table.concat(parts, ",") .. "]"
      end
      for k, x in pairs(v) do parts[#parts + 1] = jstr(tostring(k)) .. ":" .. jenc(x) end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    error("Cannot serialise " .. t .. ": type not supported", 0)
  end
  function cjson.encode(v) return jenc(v) end
  function cjson.decode(s)
    local lit = H:jsonToLua(s)
    -- JS null arrives as a userdata, not nil: test for a string.
    if type(lit) ~= "string" then error("Expected value but found invalid token", 2) end
    return load("local N = ...; return " .. lit, "=cjson", "t", {})(cjson.null)
  end

  -- tostring() formats numbers in its own code path; keep integral floats integral here too.
  local function tostring51(v)
    if math.type(v) ~= "float" then return tostring(v) end
    if v == math.floor(v) and math.abs(v) < 1e14 then return string.format("%.0f", v) end
    return string.format("%.14g", v)
  end
  local env = setmetatable({ redis = redis, cjson = cjson, tostring = tostring51 }, {
    __index = _G,
    __newindex = function(_, k) error("Attempt to modify a readonly table", 2) end,
  })
  local fn, cerr = load(src, "@user_script", "t", env)
  local out = {}
  if not fn then
    __enc({ err = "ERR Error compiling script (new function): " .. tostring(cerr) }, out)
    return table.concat(out)
  end
  -- Tracks the script's current line for error messages (a tail call would hide its frame).
  debug.sethook(function(_, l)
    local info = debug.getinfo(2, "S")
    if info and info.source == "@user_script" then line = l end
  end, "l")
  local ok, res = pcall(fn)
  debug.sethook()
  if ok then __enc(res, out); return table.concat(out) end
  local msg
  if raised ~= nil and res == raised then msg = res
  elseif type(res) == "table" and type(res.err) == "string" then msg = res.err
  else msg = "ERR " .. tostring(res) end
  msg = msg .. " script: " .. sha .. ", on @user_script:" .. (line or "?") .. "."
  __enc({ err = msg }, out)
  return table.concat(out)
end
`;
