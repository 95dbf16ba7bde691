-- bench/api-list.lua: wrk script for bench/api-list.  Walks a precomputed
-- list of page paths in order (wrapping around), over keep-alive TLS
-- connections, and checks every answer: status 200 and exactly the
-- expected number of items (each item holds the key once).
--
-- wrk ... -s api-list.lua URL -- PATHS_FILE TOKEN_FILE ITEM_KEY ITEMS MAX_REQUESTS
-- The token is read from a file so that it never shows in a process list.
-- done() prints one machine-readable line:
--   result requests=N p50_us=N p99_us=N max_us=N bad_status=N bad_items=N errors=N rps=N

local reqs, nreqs, idx = {}, 0, 0
local key, items, maxreq = nil, 100, 0
-- Globals: read by done() through thread:get().
answered, bad_status, bad_items = 0, 0, 0

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

local function count(body, needle)
	local n, pos = 0, 1
	while true do
		local s, e = string.find(body, needle, pos, true)
		if s == nil then
			return n
		end
		n = n + 1
		pos = e + 1
	end
end

function init(args)
	local f = assert(io.open(args[1], "r"))
	local t = assert(io.open(args[2], "r"))
	local token = t:read("*l")
	t:close()
	key = '"' .. args[3] .. '":'
	items = tonumber(args[4])
	maxreq = tonumber(args[5]) or 0
	wrk.headers["Authorization"] = "Bearer " .. token
	for line in f:lines() do
		nreqs = nreqs + 1
		reqs[nreqs] = wrk.format("GET", line)
	end
	f:close()
	assert(nreqs > 0, "no paths")
end

function request()
	idx = idx % nreqs + 1
	return reqs[idx]
end

function response(status, headers, body)
	answered = answered + 1
	if status ~= 200 then
		bad_status = bad_status + 1
	elseif count(body or "", key) ~= items then
		bad_items = bad_items + 1
	end
	if maxreq > 0 and answered >= maxreq then
		wrk.thread:stop()
	end
end

function done(summary, latency, requests)
	local bs, bi = 0, 0
	for _, t in ipairs(threads) do
		bs = bs + t:get("bad_status")
		bi = bi + t:get("bad_items")
	end
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format(
		"result requests=%d p50_us=%.0f p99_us=%.0f max_us=%.0f bad_status=%d bad_items=%d errors=%d rps=%.1f\n",
		summary.requests, latency:percentile(50), latency:percentile(99),
		latency.max, bs, bi, e.connect + e.read + e.write + e.timeout,
		secs > 0 and summary.requests / secs or 0))
end
