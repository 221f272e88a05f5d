// Shared helpers of the browser tests: the cluster the Go test started,
// a real chromium (Debian's; no browser downloads), sign-up through the
// forms, screenshots at phone and desktop size, and an axe-core check.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const endpoints = Object.fromEntries(
  (process.env.SUPERAPP_ENDPOINTS ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')),
);
export const control = process.env.SUPERAPP_CONTROL;
const shots = process.env.SUPERAPP_SHOTS ?? 'screenshots';
mkdirSync(shots, { recursive: true });

export const phone = { width: 390, height: 844 };
export const desktop = { width: 1280, height: 800 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.SUPERAPP_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A person's browser: its own context (cookies, IndexedDB) on one DC. */
export async function person(browser, dc, viewport = phone) {
  const context = await browser.newContext({ viewport, locale: 'en-US', baseURL: endpoints[dc] });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  return { context, page, errors };
}

let n = 0;
/** A login no other run used. */
export function unique(name) {
  return `${name.toLowerCase()}-${Date.now().toString(36)}-${(n++).toString(36)}@example.com`;
}

export const password = 'correct horse battery staple 42';

export async function signUp(page, name, login) {
  await page.goto('/signup');
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email or phone').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL('**/chats');
}

export async function logIn(page, login) {
  await page.getByLabel('Email or phone').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Saves the page at phone and desktop size; restores the viewport. */
export async function screenshot(page, name) {
  const was = page.viewportSize();
  for (const [label, size] of [['phone', phone], ['desktop', desktop]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    await page.screenshot({ path: `${shots}/${name}-${label}.png` });
  }
  await page.setViewportSize(was);
}

/** Fails on any serious or critical accessibility violation. */
export async function checkA11y(page, what) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((x) => x.target.join(' ')).join('; ')})`), [], `accessibility of ${what}`);
}

/** Calls the API directly (as a shop, a developer or an operator would). */
export async function apiCall(dc, method, path, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (method !== 'GET' && !h['Idempotency-Key']) h['Idempotency-Key'] = crypto.randomUUID();
  const r = await fetch(endpoints[dc] + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json, headers: r.headers };
}

export async function apiLogin(dc, login) {
  const r = await apiCall(dc, 'POST', '/v1/sessions', { body: { login, password } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

export async function kill(dc) {
  const r = await fetch(`${control}/kill?dc=${dc}`, { method: 'POST' });
  assert.equal(r.status, 200);
}

/** Moves a stream's leadership to dc, so that burning dc burns its leader. */
export async function lead(stream, dc) {
  const r = await fetch(`${control}/lead?stream=${stream}&dc=${dc}`, { method: 'POST' });
  assert.equal(r.status, 200, await r.text());
}

export async function restart(dc) {
  const r = await fetch(`${control}/restart?dc=${dc}`, { method: 'POST' });
  assert.equal(r.status, 200);
}

/** The texts of the "Messages" list, as the page shows them. */
export async function shownMessages(page) {
  return page.getByRole('list', { name: 'Messages' }).locator('li.msg .text').allTextContents();
}

/** Makes two people friends through the app, and opens their chat on both. */
export async function befriend(a, aName, b, bName, bLogin) {
  await a.page.goto('/friends');
  await a.page.getByLabel('Find a friend').fill(bLogin);
  await a.page.getByRole('button', { name: 'Find', exact: true }).click();
  await a.page.getByRole('button', { name: 'Add friend' }).click();
  await a.page.getByText('Request sent').waitFor();
  await b.page.goto('/friends');
  await b.page.getByRole('button', { name: 'Accept' }).click();
  await b.page.getByRole('list', { name: 'Friends' }).getByText(aName).waitFor();
  await a.page.reload();
  await a.page.getByRole('list', { name: 'Friends' }).getByRole('button', { name: 'Chat' }).click();
  await a.page.waitForURL('**/chats/*');
  const url = a.page.url();
  return url.slice(url.lastIndexOf('/') + 1);
}

/**
 * Retries fn until it stops throwing: for reading, from another DC, what
 * was just written (that DC applies it a moment later).
 */
export async function eventually(fn, timeout = 10_000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A small photo-like PNG (a sunset gradient), made here: tests need no image files. */
export function samplePNG(width = 240, height = 160) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      const sun = Math.hypot(x - width * 0.7, y - height * 0.45) < height * 0.18;
      const sea = y > height * 0.62;
      const i = row + 1 + x * 3;
      raw[i] = sun ? 255 : sea ? 30 + (y % 7) * 4 : 255 - y;
      raw[i + 1] = sun ? 214 : sea ? 90 + (x % 9) * 3 : 120 + y / 2;
      raw[i + 2] = sun ? 102 : sea ? 140 : 90 + y;
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
