// Drives payrecon's sandbox with @alexasomba/paystack-node, unchanged but for its base URL
// (the library's own `baseUrl` option): initialize, verify, list and fetch a transaction;
// create, list and fetch a refund; list and fetch a dispute.
//
// Env: PAYSTACK_BASE_URL, PAYSTACK_SECRET_KEY, PAID_TRANSACTION (the id of a successful
// transaction to refund), DISPUTE_ID. Prints one JSON line per call, with the fields its
// answer must hold by the library's types; exits 1 if any call failed or lacked one.
import { randomUUID } from 'node:crypto';
import { createPaystack } from '@alexasomba/paystack-node';

const env = process.env;
for (const name of ['PAYSTACK_BASE_URL', 'PAYSTACK_SECRET_KEY', 'PAID_TRANSACTION', 'DISPUTE_ID']) {
  if (!env[name]) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
}
const paystack = createPaystack({
  secretKey: env.PAYSTACK_SECRET_KEY,
  baseUrl: env.PAYSTACK_BASE_URL,
  timeoutMs: 15_000,
  retry: { retries: 0 }, // each call exactly once
});

let failures = 0;

// The fields `shape` names, each present with the type the library's types give it.
function checked(value, shape, where) {
  for (const [key, type] of Object.entries(shape)) {
    const found = value?.[key];
    const kind = Array.isArray(found) ? 'array' : found === null ? 'null' : typeof found;
    if (!type.split('|').includes(kind)) {
      throw new Error(`${where}.${key} is ${kind}, not ${type}`);
    }
  }
  return value;
}

async function call(name, run, shape) {
  try {
    const { data, error, response } = await run();
    if (error || !response.ok || data?.status !== true) {
      throw new Error(`HTTP ${response.status}: ${error?.message ?? JSON.stringify(error ?? data)}`);
    }
    const items = Array.isArray(data.data) ? data.data : [data.data];
    items.forEach((item, n) => checked(item, shape, `${name}.data[${n}]`));
    console.log(JSON.stringify({ call: name, ok: true, status: response.status, items: items.length }));
    return data.data;
  } catch (e) {
    failures += 1;
    console.log(JSON.stringify({ call: name, ok: false, detail: String(e?.message ?? e).slice(0, 300) }));
    return undefined;
  }
}

const TRANSACTION = { id: 'number', reference: 'string', status: 'string', amount: 'number', currency: 'string' };
const REFUND = { id: 'number', status: 'string', amount: 'number', currency: 'string' };
const DISPUTE = { id: 'number', status: 'string', currency: 'string|null' };

const reference = `npm-${Date.now()}-${randomUUID().slice(0, 8)}`;
const made = await call(
  'transaction.initialize',
  () => paystack.transaction_initialize({
    body: { email: 'ada@example.com', amount: 500000, currency: 'NGN', reference },
  }),
  { authorization_url: 'string', access_code: 'string', reference: 'string' },
);
const verified = await call(
  'transaction.verify',
  () => paystack.transaction_verify({ params: { path: { reference: made?.reference ?? reference } } }),
  TRANSACTION,
);
await call(
  'transaction.list',
  () => paystack.transaction_list({ params: { query: { per_page: 10, page: 1 } } }),
  TRANSACTION,
);
await call(
  'transaction.fetch',
  () => paystack.transaction_fetch({ params: { path: { id: verified?.id ?? 0 } } }),
  TRANSACTION,
);
const refund = await call(
  'refund.create',
  () => paystack.refund_create({ body: { transaction: String(env.PAID_TRANSACTION), amount: 10000 } }),
  REFUND,
);
await call(
  'refund.list',
  () => paystack.refund_list({ params: { query: { perPage: 10, page: 1 } } }),
  REFUND,
);
await call(
  'refund.fetch',
  () => paystack.refund_fetch({ params: { path: { id: refund?.id ?? 0 } } }),
  REFUND,
);
await call(
  'dispute.list',
  () => paystack.dispute_list({ params: { query: { perPage: 10, page: 1 } } }),
  DISPUTE,
);
await call(
  'dispute.fetch',
  () => paystack.dispute_fetch({ params: { path: { id: Number(env.DISPUTE_ID) } } }),
  DISPUTE,
);
process.exit(failures ? 1 : 0);
