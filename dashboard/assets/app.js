// The live page: logs in, follows /api/stream (Server-Sent Events), draws the funnel with uPlot
// and the panels as plain DOM, and edits the live rules. Everything it keeps is bounded: the
// chart holds at most KEEP points, the panels are redrawn in place.
"use strict";

const KEEP = 300; // five minutes at one point a second
const SERIES = [
  ["path", "path", "#58a6ff"], ["order", "order", "#a371f7"], ["accepted", "202 accepted", "#2ea043"],
  ["sold_out", "sold out", "#8b98a5"], ["limited", "429", "#d29922"], ["unavailable", "503", "#da3633"],
  ["captcha", "captcha", "#39c5cf"],
];
const $ = (id) => document.getElementById(id);
let chart = null;
let data = [[], ...SERIES.map(() => [])];
let source = null;
let rulesVersion = 0;

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", headers: { "Content-Type": "application/json" }, ...options });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  return { status: response.status, body };
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function figure(label, value, id) {
  const attrs = { class: "figure" };
  if (id) attrs.id = id;
  return el("div", attrs, [el("b", { text: value }), el("span", { text: label })]);
}

const num = (x, digits = 0) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

async function start() {
  const session = await api("/api/session");
  if (session.status === 200) return showMain();
  $("login").hidden = false;
  $("dev-login").hidden = !(session.body && session.body.development_login);
}

async function login(event) {
  event.preventDefault();
  const reply = await api("/api/login", { method: "POST", body: JSON.stringify({ username: $("username").value, password: $("password").value }) });
  if (reply.status === 200) return showMain();
  $("login-error").textContent = (reply.body && reply.body.detail) || `login failed (${reply.status})`;
}

async function developmentLogin() {
  const reply = await api("/api/dev-login", { method: "POST" });
  if (reply.status === 200) return showMain();
  $("login-error").textContent = `development login refused (${reply.status})`;
}

function showMain() {
  $("login").hidden = true;
  $("main").hidden = false;
  chart = new uPlot({
    width: Math.max(600, $("funnel").clientWidth - 8), height: 260,
    series: [{}, ...SERIES.map(([, label, stroke]) => ({ label, stroke, width: 2, value: (u, v) => num(v, 1) }))],
    axes: [{ stroke: "#8b98a5" }, { stroke: "#8b98a5", label: "per second" }],
    scales: { x: { time: true } },
  }, data, $("funnel"));
  follow();
  loadRules();
}

function follow() {
  if (source) source.close();
  source = new EventSource("/api/stream");
  source.addEventListener("history", (event) => {
    const points = JSON.parse(event.data);
    data = [points.map((p) => p.at_ms / 1000), ...SERIES.map(([key]) => points.map((p) => p[key]))];
    chart.setData(data);
  });
  source.onmessage = (event) => render(JSON.parse(event.data));
  source.onopen = () => { $("stream-state").textContent = "live"; };
  source.onerror = () => { $("stream-state").textContent = "reconnecting"; };
}

function render(snapshot) {
  const point = snapshot.funnel;
  data[0].push(point.at_ms / 1000);
  SERIES.forEach(([key], i) => data[i + 1].push(point[key]));
  if (data[0].length > KEEP) data = data.map((column) => column.slice(-KEEP));
  chart.setData(data);
  $("updated").textContent = "updated " + new Date(snapshot.at_ms).toLocaleTimeString();
  $("funnel-now").replaceChildren(...SERIES.map(([key, label]) => figure(label + "/s", num(point[key], 1), "funnel-" + key)));
  renderAudit(snapshot.audit);
  renderGoods(snapshot.goods);
  renderQueue(snapshot.queue, snapshot.workers, snapshot.postgres);
  renderNodes(snapshot.nodes, snapshot.programs);
  renderDemo(snapshot.demo);
  renderScenario(snapshot.scenario);
  if (snapshot.rules.ok) {
    $("rules-version").textContent = "rules v" + snapshot.rules.ok.version;
    if (snapshot.rules.ok.version !== rulesVersion && !document.activeElement.closest("#rules-form")) loadRules();
  }
}

function renderAudit(audit) {
  const badge = $("audit-badge");
  if (audit.unreachable) {
    badge.className = "badge unknown";
    badge.textContent = "audit unreachable";
    badge.title = audit.unreachable;
  } else {
    const a = audit.ok;
    badge.className = "badge " + (a.clean ? "ok" : "bad");
    badge.textContent = a.clean ? `audit clean (${a.goods} goods${a.drained ? "" : ", draining"})` : "AUDIT: " + a.violations.length + " violation(s)";
    badge.title = a.violations.join("\n");
  }
}

function renderGoods(goods) {
  if (goods.unreachable) return $("goods").replaceChildren(el("p", { class: "unreachable", text: "unreachable: " + goods.unreachable }));
  if (goods.ok.length === 0) return $("goods").replaceChildren(el("p", { class: "muted", text: "No goods yet: start a demo sale." }));
  $("goods").replaceChildren(...goods.ok.map((g) => {
    const left = g.redis_stock === null ? 0 : g.redis_stock;
    const bar = el("div", { class: "bar" }, [el("div", { style: `width:${g.initial_stock ? (100 * left) / g.initial_stock : 0}%` })]);
    return el("div", { class: "goods" + (g.violations.length ? " violation" : ""), "data-goods-id": g.goods_id }, [
      el("b", { text: `#${g.goods_id} ${g.name}` }), el("div", { class: "muted", text: `${g.strategy}${g.sold_out ? " · SOLD OUT" : ""}` }), bar,
      el("div", { class: "figures" }, [
        figure("Redis stock", g.redis_stock === null ? "not warmed" : g.redis_stock, `goods-${g.goods_id}-redis-stock`),
        figure("holds", g.holds, `goods-${g.goods_id}-holds`),
        figure("PostgreSQL stock", g.db_stock, `goods-${g.goods_id}-db-stock`),
        figure("orders", g.orders + " / " + g.initial_stock, `goods-${g.goods_id}-orders`),
        figure("pending tickets", g.pending_tickets, `goods-${g.goods_id}-pending`),
      ]),
      ...g.violations.map((v) => el("div", { class: "error", text: v })),
    ]);
  }));
}

function renderQueue(queue, workers, postgres) {
  if (queue.unreachable) {
    $("queue").replaceChildren(el("p", { class: "unreachable", text: "unreachable: " + queue.unreachable }));
  } else {
    const q = queue.ok;
    const rates = q.rates.ok
      ? [figure("published/s", num(q.rates.ok.publish, 1)), figure("delivered/s", num(q.rates.ok.deliver, 1)), figure("acked/s", num(q.rates.ok.ack, 1)), figure("unacked", q.rates.ok.unacked)]
      : [el("p", { class: "unreachable", text: "rates: " + q.rates.unreachable })];
    $("queue").replaceChildren(figure("ready in " + q.queue, q.depth, "queue-depth"), figure("consumers", q.consumers, "queue-consumers"),
      figure("dead letters", q.dead_letters, "queue-dead-letters"), ...rates);
  }
  $("workers").replaceChildren(figure("settled/s", num(workers.drained_per_sec, 1)), figure("written/s", num(workers.written_per_sec, 1)),
    figure("batches/s", num(workers.batches_per_sec, 1)), figure("mean batch", num(workers.mean_batch, 1)), figure("redelivered/s", num(workers.redelivered_per_sec, 1)));
  $("postgres").replaceChildren(postgres.ok ? figure("transactions/s", num(postgres.ok.transactions_per_sec, 1), "pg-tps")
    : el("p", { class: "unreachable", text: "unreachable: " + postgres.unreachable }));
}

function renderNodes(nodes, programs) {
  if (nodes.unreachable) {
    $("nodes").replaceChildren(el("p", { class: "unreachable", text: "unreachable: " + nodes.unreachable }));
  } else {
    $("nodes").replaceChildren(...nodes.ok.map((n) => el("div", { class: "node status-" + n.status, "data-addr": n.addr, "data-status": n.status }, [
      el("b", { text: `${n.service} ${n.addr}` }), el("br"),
      el("span", { text: `${n.status} · ${num(n.qps)} qps · ${num(n.errors, 1)} err/s · p99 ${n.p99_ms === null ? "–" : num(n.p99_ms, 1) + " ms"} · ${num(n.in_flight)} in flight` }),
    ])));
  }
  $("programs").replaceChildren(...programs.map((p) => el("div", { class: "program" + (p.up ? "" : " down"), "data-program": p.program }, [
    el("b", { text: p.program }), el("br"),
    el("span", { text: `${p.up ? "up" : "unreachable"}${p.rules_version === null ? "" : " · rules v" + p.rules_version} · ${p.url}` }),
  ])));
}

function renderDemo(demo) {
  if (!demo) return;
  const text = `${demo.phase}: ${demo.stock} units, ${demo.buyers} buyers at ${demo.rate}/s${demo.goods_id ? " · goods #" + demo.goods_id : ""}`;
  $("demo-state").replaceChildren(el("div", { id: "demo-phase", "data-phase": demo.phase, text }), ...demo.summary.map((line) => el("div", { text: line })));
}

function renderScenario(scenario) {
  if (scenario.unreachable) return $("scenario").replaceChildren(el("p", { class: "unreachable", text: scenario.unreachable }));
  const s = scenario.ok;
  if (!s) return;
  const rows = s.variants.map((v) => el("tr", {}, [v.variant, v.orders, v.oversold, (100 * v.accepted_rate).toFixed(1) + "%", num(v.p99_ms, 1) + " ms",
    v.own.map(([name, value]) => `${name}: ${value}`).join("; ")].map((cell) => el("td", { text: String(cell) }))));
  const head = el("tr", {}, ["variant", "orders", "oversold", "accepted", "p99", "its own figures"].map((h) => el("th", { text: h })));
  $("scenario").replaceChildren(
    el("div", { id: "scenario-phase", "data-phase": s.phase, text: `${s.name}: ${s.title} · ${s.phase} (since ${new Date(s.started_at_ms).toLocaleTimeString()})` }),
    ...(s.verdict ? [el("div", { text: s.verdict })] : []),
    ...(rows.length ? [el("table", { class: "variants" }, [head, ...rows])] : []));
}

async function startDemo(event) {
  event.preventDefault();
  const body = { stock: Number($("demo-stock").value), buyers: Number($("demo-buyers").value), rate: Number($("demo-rate").value) };
  const reply = await api("/api/demo", { method: "POST", body: JSON.stringify(body) });
  if (reply.status !== 202) $("demo-state").textContent = (reply.body && reply.body.detail) || `refused (${reply.status})`;
}

// The number rules by group (inputs "rule-<key>" for the limits, "rule-<group>-<key>" for the
// others; empty is null: the configured value), then the switches.
const NUMBER_RULES = {
  limits: ["global_per_sec", "per_ip_per_sec", "per_user_per_sec", "per_user_burst", "brush_limit", "brush_window_ms", "strikes_to_ban"],
  breaker: ["window_ms", "min_calls", "failure_percent", "slow_call_ms", "slow_call_percent", "consecutive_failures", "open_for_ms", "half_open_probes"],
  retry: ["max_attempts", "budget_percent", "budget_min_per_sec"],
};
const SWITCHES = ["sales_closed", "captchas_off", "sold_out_flag_off"];
const ruleInput = (group, key) => $(group === "limits" ? "rule-" + key : `rule-${group}-${key}`);

async function loadRules() {
  const reply = await api("/api/rules");
  if (reply.status !== 200) return ($("rules-status").textContent = "rules unavailable");
  const { current, log } = reply.body;
  rulesVersion = current.version;
  for (const [group, keys] of Object.entries(NUMBER_RULES)) for (const key of keys) ruleInput(group, key).value = current.rules[group][key] ?? "";
  const enabled = current.rules.breaker.enabled;
  $("rule-breaker-enabled").value = enabled === null || enabled === undefined ? "" : String(enabled);
  for (const key of SWITCHES) $("switch-" + key).checked = current.rules.switches[key];
  $("rules-log").replaceChildren(...log.map((set) => el("li", { text: `v${set.version} by ${set.changed_by} at ${new Date(set.changed_at_ms).toLocaleTimeString()}: ${JSON.stringify(set.rules)}` })));
}

async function saveRules(event) {
  event.preventDefault();
  const rules = { switches: {} };
  for (const [group, keys] of Object.entries(NUMBER_RULES)) {
    rules[group] = {};
    for (const key of keys) { const value = ruleInput(group, key).value; rules[group][key] = value === "" ? null : Number(value); }
  }
  const enabled = $("rule-breaker-enabled").value;
  rules.breaker.enabled = enabled === "" ? null : enabled === "true";
  for (const key of SWITCHES) rules.switches[key] = $("switch-" + key).checked;
  const reply = await api("/api/rules", { method: "PUT", body: JSON.stringify({ version: rulesVersion, rules }) });
  $("rules-status").textContent = reply.status === 200 ? `saved as v${reply.body.version}` : (reply.body && reply.body.detail) || `refused (${reply.status})`;
  document.activeElement.blur();
  await loadRules();
}

async function logout() {
  await api("/api/logout", { method: "POST" });
  location.reload();
}

$("login-form").addEventListener("submit", login);
$("dev-login").addEventListener("click", developmentLogin);
$("demo-form").addEventListener("submit", startDemo);
$("rules-form").addEventListener("submit", saveRules);
$("logout").addEventListener("click", logout);
start();
