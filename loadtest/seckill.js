// The flash sale as its buyers live it, against a running gateway (scripts/dev-up or
// docker compose up): USERS buyers, already logged in, each try once to buy one of STOCK units.
// Each buyer solves the captcha (the gateway's test mode), trades the answer for the hidden path,
// places the order and polls until the order is settled; a share of the winners (PAY_RATIO) then
// pays for it, through the payment provider (the sandbox simulator in scripts/dev-up and
// docker-compose.yml), and polls until the order is paid. Then the audit must find every unit
// sold exactly once; with WAIT_WINDOW=1 it first waits for the payment window to close, and every
// order not paid must have been cancelled with its unit back in stock.
//
//   k6 run loadtest/seckill.js
//   k6 run -e USERS=500 -e STOCK=50 -e VUS=50 loadtest/seckill.js
//   loadtest buyers --count 100000 --out /tmp/buyers.json && k6 run -e BUYERS=/tmp/buyers.json -e STOCK=1000 loadtest/seckill.js
//
// Parameters (-e NAME=value):
//   BASE_URL        the gateway                              http://127.0.0.1:8080
//   USERS           buyers, one iteration each               5000 (with BUYERS: the file's count)
//   BUYERS          a buyers file (`loadtest buyers`): their  none: setup creates USERS buyers
//                   tokens, loaded once and shared by all VUs
//                   (k6 reads a relative path from this script's directory: give an absolute one)
//   STOCK           units on sale                            500
//   VUS             buyers at once                           200
//   MAX_DURATION    the sale's time limit                    10m
//   CAPTCHA         the gateway's captcha test answer        k6-test
//   ADMIN_USER      admin that sets the sale up              admin
//   ADMIN_PASSWORD                                           seckill-admin
//   P95_MS          p95 latency limit of each step, in ms    1000
//   RESULT_WAIT     seconds a buyer polls for its outcome    60
//   DRAIN_WAIT      seconds the audit waits for the queue    120
//   PAY_RATIO       share of winners who pay, 0 to 1         0
//   PAYMENT_WINDOW  the goods' payment window, in seconds    900
//   WAIT_WINDOW     1: the teardown waits for the window to  0
//                   close and checks the cancellations
// The defaults match scripts/dev-up and docker-compose.yml. Without BUYERS, setup creates the
// buyers and k6 copies setup's data, their tokens, into every VU: memory grows with USERS × VUS
// (5000 × 200 takes about 0.4 GB, 20000 × 200 1.8 GB). With BUYERS, the tokens are read in
// the init context into one SharedArray that every VU reads in place: memory grows with USERS
// alone (100,000 buyers × 200 VUs: 254 MB; see the README's large sale).
//
// The run fails (k6 exits with 99) unless exactly min(USERS, STOCK) buyers got an order, nobody
// got two, fewer than 1% of requests failed (409 sold out or duplicate and 429 rate limited are
// answers, not failures), every step's p95 is under P95_MS, and the audit of the goods, once
// every ticket is settled, finds no violation and as many orders in the database.

import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { SharedArray } from 'k6/data';
import { Counter, Trend } from 'k6/metrics';

const setting = (name, fallback) => (__ENV[name] ? __ENV[name] : fallback);
const number = (name, fallback) => {
  const value = Number(setting(name, fallback));
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, not ${__ENV[name]}`);
  return value;
};

const BASE_URL = setting('BASE_URL', 'http://127.0.0.1:8080').replace(/\/$/, '');
const BUYERS = setting('BUYERS', '');
// One copy for every VU (k6 keeps a SharedArray's data outside the VUs' JavaScript heaps); `open`
// is only allowed in the init context, which is why the file is read here and not in setup.
const buyerTokens = BUYERS ? new SharedArray('buyers', () => readBuyers(open(BUYERS))) : null;
const USERS = buyerTokens ? buyerTokens.length : number('USERS', 5000);
const STOCK = number('STOCK', 500);
const VUS = Math.max(1, Math.min(number('VUS', 200), USERS)); // shared-iterations wants VUs <= iterations
const MAX_DURATION = setting('MAX_DURATION', '10m');
const CAPTCHA = setting('CAPTCHA', 'k6-test');
const ADMIN_USER = setting('ADMIN_USER', 'admin');
const ADMIN_PASSWORD = setting('ADMIN_PASSWORD', 'seckill-admin');
const P95_MS = number('P95_MS', 1000);
const RESULT_WAIT = number('RESULT_WAIT', 60);
const DRAIN_WAIT = number('DRAIN_WAIT', 120);
const PAY_RATIO = Number(setting('PAY_RATIO', '0'));
if (!(PAY_RATIO >= 0 && PAY_RATIO <= 1)) throw new Error(`PAY_RATIO must be 0 to 1, not ${__ENV.PAY_RATIO}`);
const PAYMENT_WINDOW = number('PAYMENT_WINDOW', 900);
const WAIT_WINDOW = setting('WAIT_WINDOW', '0') === '1';

const EXPECTED_ORDERS = Math.min(USERS, STOCK);
const BULK_CHUNK = 10000; // users per bulk call, well under the gateway's limit
const ATTEMPTS = 5; // tries per buyer when rate limited (429), waiting Retry-After in between

const ordersSucceeded = new Counter('orders_succeeded');
const soldOut = new Counter('sold_out');
const duplicates = new Counter('duplicates');
const rejected = new Counter('rejected'); // no order for another reason; tagged with it
const timeToResult = new Trend('time_to_result', true); // order request to settled order
const auditPassed = new Counter('audit_passed');
const paymentsPaid = new Counter('payments_paid');
const paymentsFailed = new Counter('payments_failed'); // a payment started that never paid its order

export const options = {
  scenarios: {
    flash_sale: { executor: 'shared-iterations', vus: VUS, iterations: USERS, maxDuration: MAX_DURATION },
  },
  setupTimeout: '10m',
  teardownTimeout: `${DRAIN_WAIT + 60 + (WAIT_WINDOW ? PAYMENT_WINDOW : 0)}s`,
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{step:captcha}': [`p(95)<${P95_MS}`],
    'http_req_duration{step:path}': [`p(95)<${P95_MS}`],
    'http_req_duration{step:order}': [`p(95)<${P95_MS}`],
    'http_req_duration{step:result}': [`p(95)<${P95_MS}`],
    orders_succeeded: [`count==${EXPECTED_ORDERS}`],
    duplicates: ['count==0'],
    payments_failed: ['count==0'],
    // A counter, not a check rate: a threshold on checks that never ran would pass.
    audit_passed: ['count==1'],
  },
};

// Planned answers of the API are not failures in http_req_failed.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 202 }, 409, 429));

function adminCall(method, path, body, token, expected) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = http.request(method, `${BASE_URL}${path}`, body === null ? null : JSON.stringify(body), {
    headers,
    tags: { step: 'admin', name: `${method} ${path.replace(/\d+/g, '{id}')}` },
  });
  if (response.status !== expected) {
    throw new Error(`${method} ${path}: expected ${expected}, got ${response.status} ${response.error || response.body}`);
  }
  return response.json();
}

// A buyers file as `loadtest buyers` writes it: {"tokens": ["<jwt>", ...]}.
function readBuyers(text) {
  const tokens = JSON.parse(text).tokens;
  if (!Array.isArray(tokens) || tokens.length === 0) throw new Error(`${BUYERS} holds no buyer tokens`);
  return tokens;
}

export function setup() {
  const login = adminCall('POST', '/api/v1/users/login', { username: ADMIN_USER, password: ADMIN_PASSWORD }, null, 200);
  const admin = login.token;
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  const now = Date.now();
  const goods = adminCall('POST', '/admin/v1/goods', {
    name: `k6 flash sale ${run}`,
    description: `${STOCK} units for ${USERS} buyers`,
    price_cents: 99900,
    seckill_price_cents: 100,
    stock: STOCK,
    start_at: new Date(now - 60 * 1000).toISOString(),
    end_at: new Date(now + 60 * 60 * 1000).toISOString(),
    payment_window_secs: PAYMENT_WINDOW,
  }, admin, 201);
  adminCall('POST', `/admin/v1/goods/${goods.goods_id}/warmup`, null, admin, 200);

  console.log(`goods ${goods.goods_id}: ${STOCK} units for ${USERS} buyers, ${VUS} at once`);
  if (buyerTokens) return { goodsId: goods.goods_id, admin, startedAt: Date.now() };
  // Users named k6-<run>-<chunk>-<n>: new ones every run, so nobody has bought before.
  const tokens = [];
  for (let chunk = 0; tokens.length < USERS; chunk++) {
    const count = Math.min(BULK_CHUNK, USERS - tokens.length);
    const created = adminCall('POST', '/admin/v1/users/bulk', { prefix: `k6-${run}-${chunk}-`, count }, admin, 201);
    for (const user of created.users) tokens.push(user.token);
  }
  return { goodsId: goods.goods_id, admin, tokens, startedAt: Date.now() };
}

// One buyer per iteration.
export default function (data) {
  const i = exec.scenario.iterationInTest;
  const token = buyerTokens ? buyerTokens[i] : data.tokens[i];
  const goods = `${BASE_URL}/api/v1/seckill/goods/${data.goodsId}`;
  const params = (step, name) => ({
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    tags: { step, name },
  });
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const outcome = tryToBuy(goods, params);
    if (outcome.retryAfter === undefined) {
      record(outcome);
      // Every buyer's own coin: the share of winners who pay is PAY_RATIO on average.
      if (outcome.kind === 'succeeded' && Math.random() < PAY_RATIO) pay(outcome.orderId, params);
      return;
    }
    sleep(Math.min(outcome.retryAfter, 5));
  }
  rejected.add(1, { reason: 'rate_limited' });
}

// captcha → path → order → result. Returns the outcome, or { retryAfter } when rate limited.
function tryToBuy(goods, params) {
  const image = http.get(`${goods}/captcha`, params('captcha', 'GET /goods/{id}/captcha'));
  if (image.status !== 200) return refusal(image);
  check(image, { 'the captcha is a PNG': (r) => r.headers['Content-Type'] === 'image/png' });

  const path = http.post(`${goods}/path`, JSON.stringify({ captcha: CAPTCHA }), params('path', 'POST /goods/{id}/path'));
  if (path.status !== 200) return refusal(path);

  const hidden = path.json('path');
  const order = http.post(`${goods}/${hidden}/orders`, null, params('order', 'POST /goods/{id}/{path}/orders'));
  if (order.status !== 202) return refusal(order);
  return awaitResult(goods, params('result', 'GET /goods/{id}/result'), Date.now());
}

// Polls the result of an accepted ticket until it is settled, backing off up to a second.
function awaitResult(goods, params, placedAt) {
  const deadline = placedAt + RESULT_WAIT * 1000;
  let pause = 0.1;
  while (Date.now() < deadline) {
    sleep(pause);
    pause = Math.min(pause * 2, 1);
    const response = http.get(`${goods}/result`, params);
    if (response.status !== 200) continue;
    const result = response.json();
    if (result.status === 'queued' || result.status === 'none') continue;
    timeToResult.add(Date.now() - placedAt);
    if (result.status === 'success') return { kind: 'succeeded', orderId: result.order_id };
    if (result.status === 'sold_out') return { kind: 'sold_out' };
    return { kind: 'rejected', reason: `result_${result.status}` };
  }
  return { kind: 'rejected', reason: 'result_timeout' };
}

// Pays the order (a fresh Idempotency-Key per payment) and polls until the provider's callback
// paid it.
function pay(orderId, params) {
  const key = `k6-${exec.scenario.iterationInTest}-${Date.now()}`;
  const request = params('pay', 'POST /orders/{id}/pay');
  request.headers['Idempotency-Key'] = key;
  const started = http.post(`${BASE_URL}/api/v1/orders/${orderId}/pay`, null, request);
  if (started.status !== 202) {
    paymentsFailed.add(1, { reason: `HTTP_${started.status}` });
    return;
  }
  const deadline = Date.now() + RESULT_WAIT * 1000;
  let pause = 0.1;
  while (Date.now() < deadline) {
    sleep(pause);
    pause = Math.min(pause * 2, 1);
    const order = http.get(`${BASE_URL}/api/v1/orders/${orderId}`, params('order_status', 'GET /orders/{id}'));
    if (order.status === 200 && order.json('status') === 'paid') {
      paymentsPaid.add(1);
      return;
    }
  }
  paymentsFailed.add(1, { reason: 'not_paid' });
}

// What a non-success answer means for the buyer.
function refusal(response) {
  if (response.status === 429) {
    return { retryAfter: Number(response.headers['Retry-After']) || 1 };
  }
  let code = `HTTP_${response.status}`;
  try {
    code = response.json('code') || code;
  } catch (_) {
    // Not a problem+json body (a proxy, a crash): the status says enough.
  }
  if (code === 'SOLD_OUT') return { kind: 'sold_out' };
  if (code === 'DUPLICATE_ORDER') return { kind: 'duplicate' };
  return { kind: 'rejected', reason: code };
}

function record(outcome) {
  if (outcome.kind === 'succeeded') ordersSucceeded.add(1);
  else if (outcome.kind === 'sold_out') soldOut.add(1);
  else if (outcome.kind === 'duplicate') duplicates.add(1);
  else rejected.add(1, { reason: outcome.reason });
}

// Waits until every accepted ticket is settled (with WAIT_WINDOW, also until the payment window
// closed and every unpaid order was cancelled), then audits the goods.
export function teardown(data) {
  const path = `/admin/v1/goods/${data.goodsId}/audit`;
  const windowClosed = data.startedAt + PAYMENT_WINDOW * 1000;
  if (WAIT_WINDOW && Date.now() < windowClosed) {
    console.log(`waiting ${Math.ceil((windowClosed - Date.now()) / 1000)} s for the payment window to close`);
    sleep((windowClosed - Date.now()) / 1000);
  }
  const deadline = Date.now() + DRAIN_WAIT * 1000;
  const settled = (g) => g.drained && (!WAIT_WINDOW || g.unpaid === 0);
  let report = adminCall('GET', path, null, data.admin, 200);
  while (!settled(report.goods[0]) && Date.now() < deadline) {
    sleep(1);
    report = adminCall('GET', path, null, data.admin, 200);
  }
  const goods = report.goods[0];
  console.log(
    `audit of goods ${goods.goods_id}: initial ${goods.initial_stock}, db stock ${goods.db_stock}, ` +
      `redis stock ${goods.redis_stock}, holds ${goods.holds}, orders ${goods.orders}, ` +
      `duplicates ${goods.duplicates}, oversold ${goods.oversold}, pending tickets ${goods.pending_tickets}, ` +
      `unpaid ${goods.unpaid}, paid ${goods.paid}, cancelled ${goods.cancelled}`,
  );
  for (const violation of goods.violations) console.error(`audit violation: ${violation}`);
  const passed = check(goods, {
    'audit: every ticket settled': (g) => g.drained,
    'audit: no invariant violated': (g) => report.ok && g.violations.length === 0,
    [`audit: ${EXPECTED_ORDERS} orders in the database`]: (g) =>
      WAIT_WINDOW ? g.paid + g.cancelled === EXPECTED_ORDERS : g.orders === EXPECTED_ORDERS,
    'audit: after the window, every unpaid order cancelled and its unit back': (g) =>
      !WAIT_WINDOW || (g.unpaid === 0 && g.db_stock === g.initial_stock - g.paid && g.redis_stock === g.db_stock),
  });
  if (passed) auditPassed.add(1);
}
