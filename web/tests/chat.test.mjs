// Two people, two browsers, two DCs: sign-up through the forms, friends,
// real-time chat with typing, receipts and an image; and the session's
// security (CSP, HttpOnly refresh cookie, logout clears the browser).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, person, unique, signUp, logIn, screenshot, checkA11y, befriend, shownMessages, endpoints, samplePNG } from './lib.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

const png = samplePNG();

test('two people chat in real time on two DCs', async () => {
  const alice = await person(browser, 'dc1');
  const bob = await person(browser, 'dc2');
  const aliceLogin = unique('alice');
  const bobLogin = unique('bob');

  await alice.page.goto('/login');
  await alice.page.getByRole('button', { name: 'Log in' }).waitFor();
  await checkA11y(alice.page, 'log in');
  await screenshot(alice.page, 'login');
  await alice.page.goto('/signup');
  await alice.page.getByRole('button', { name: 'Sign up' }).waitFor();
  await checkA11y(alice.page, 'sign up');
  await screenshot(alice.page, 'signup');

  await signUp(alice.page, 'Alice Kim', aliceLogin);
  await signUp(bob.page, 'Bob Lee', bobLogin);
  const conv = await befriend(alice, 'Alice Kim', bob, 'Bob Lee', bobLogin);
  await checkA11y(bob.page, 'friends');
  await screenshot(bob.page, 'friends');

  await bob.page.goto(`/chats/${conv}`);
  await bob.page.getByRole('list', { name: 'Messages' }).waitFor();
  // Typing shows on the other DC. The signal is fleeting (sent at most
  // every 3 s, not kept): one sent before Bob's event stream is up is
  // gone, so Alice types again after that interval, as people do.
  const box = alice.page.getByRole('textbox', { name: 'Message' });
  for (let attempt = 1; ; attempt++) {
    await box.fill('');
    await box.pressSequentially('Hello Bob', { delay: 20 });
    try {
      await bob.page.getByText('Alice Kim is typing…').waitFor({ timeout: 3_500 });
      break;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
  await alice.page.getByRole('button', { name: 'Send' }).click();
  await bob.page.getByRole('list', { name: 'Messages' }).getByText('Hello Bob').waitFor();
  // Bob's open page reads it: Alice sees the receipt.
  await alice.page.getByRole('list', { name: 'Messages' }).locator('li.msg.mine').last().getByText('Read').waitFor({ timeout: 10_000 });

  await bob.page.getByRole('textbox', { name: 'Message' }).fill('Hi Alice! Photo from the market:');
  await bob.page.getByRole('textbox', { name: 'Message' }).press('Enter');
  await bob.page.locator('input[type=file]').setInputFiles({ name: 'market.png', mimeType: 'image/png', buffer: png });
  await alice.page.getByRole('img', { name: 'market.png' }).waitFor({ timeout: 15_000 });
  await alice.page.getByText('Hi Alice! Photo from the market:').waitFor();
  assert.deepEqual(await shownMessages(alice.page), ['Hello Bob', 'Hi Alice! Photo from the market:']);

  await checkA11y(alice.page, 'conversation');
  await screenshot(alice.page, 'conversation');
  await alice.page.goto('/chats');
  await alice.page.getByRole('link', { name: /Bob Lee/ }).waitFor();
  await checkA11y(alice.page, 'chats');
  await screenshot(alice.page, 'chats');
  await alice.page.goto('/settings');
  await alice.page.getByRole('heading', { name: 'Settings' }).waitFor();
  await alice.page.getByText('This device').waitFor();
  await checkA11y(alice.page, 'settings');
  await screenshot(alice.page, 'settings');
  assert.deepEqual([...alice.errors, ...bob.errors].filter((e) => !/Failed to load resource/.test(e)), []);
  await alice.context.close();
  await bob.context.close();
});

test('the session is out of reach of scripts and logout clears the browser', async () => {
  const me = await person(browser, 'dc3');
  const login = unique('carol');
  const res = await me.page.goto('/signup');
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  for (const url of Object.values(endpoints)) assert.ok(csp.includes(url), `connect-src names ${url}`);
  await signUp(me.page, 'Carol Park', login);
  const cookies = await me.context.cookies();
  const refresh = cookies.find((c) => c.name === 'superapp_refresh');
  assert.ok(refresh, 'a refresh cookie');
  assert.equal(refresh.httpOnly, true);
  assert.equal(refresh.sameSite, 'Strict');
  assert.equal(await me.page.evaluate(() => document.cookie.includes('superapp_refresh')), false);
  // No token in storage a script could read.
  const stored = await me.page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.doesNotMatch(stored, /rt1\.|eyJ/);
  // A reload keeps the session (the cookie), then logout ends it.
  await me.page.reload();
  await me.page.getByRole('heading', { name: 'Chats' }).waitFor();
  await me.page.goto('/settings');
  await me.page.getByRole('button', { name: 'Log out' }).click();
  await me.page.waitForURL('**/login');
  assert.equal((await me.context.cookies()).some((c) => c.name === 'superapp_refresh'), false);
  assert.equal(await me.page.evaluate(async () => (await indexedDB.databases()).length), 0);
  await me.page.reload();
  await me.page.getByRole('button', { name: 'Log in' }).waitFor();
  // Logging in again works, and a deep link comes back after it.
  await me.page.goto('/settings');
  await me.page.waitForURL('**/login?next=%2Fsettings');
  await logIn(me.page, login);
  await me.page.waitForURL('**/settings');
  await me.context.close();
});

test('Korean follows the browser, and English can be chosen', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR', baseURL: endpoints.dc2 });
  const page = await context.newPage();
  await page.goto('/signup');
  await page.getByRole('button', { name: '가입하기' }).waitFor();
  await page.getByLabel('이메일 또는 전화번호').waitFor();
  await checkA11y(page, 'sign up in Korean');
  await screenshot(page, 'signup-ko');
  await page.getByLabel('이름').fill('김지우');
  await page.getByLabel('이메일 또는 전화번호').fill(unique('jiwoo'));
  await page.getByLabel('비밀번호').fill('correct horse battery staple 42');
  await page.getByRole('button', { name: '가입하기' }).click();
  await page.getByRole('heading', { name: '채팅' }).waitFor();
  await screenshot(page, 'chats-ko');
  await page.goto('/settings');
  await page.getByRole('button', { name: 'English' }).click();
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
  await context.close();
});

test('older messages page back in order', async () => {
  const { apiCall, apiLogin, password } = await import('./lib.mjs');
  const logins = [unique('hana'), unique('joon')];
  const ids = [];
  const tokens = [];
  for (const [i, login] of logins.entries()) {
    const r = await apiCall('dc1', 'POST', '/v1/accounts', { body: { name: ['Hana', 'Joon'][i], email: login, password } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const t = await apiLogin('dc1', login);
    ids.push(t.user_id);
    tokens.push(t.access_token);
  }
  const conv = await apiCall('dc1', 'POST', '/v1/conversations', { token: tokens[0], body: { members: [ids[1]], kind: 'direct' } });
  assert.equal(conv.status, 201, JSON.stringify(conv.body));
  const texts = Array.from({ length: 70 }, (_, i) => `history ${i + 1}`);
  for (const text of texts) {
    const id = crypto.randomUUID();
    const r = await apiCall('dc1', 'POST', `/v1/conversations/${conv.body.conversation_id}/messages`, { token: tokens[0], body: { id, text }, headers: { 'Idempotency-Key': id } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const joon = await person(browser, 'dc2');
  await joon.page.goto('/login');
  await logIn(joon.page, logins[1]);
  await joon.page.waitForURL('**/chats');
  await joon.page.goto(`/chats/${conv.body.conversation_id}`);
  await joon.page.getByText('history 70').waitFor();
  // Named although not a friend, and the newest in view.
  await joon.page.getByRole('heading', { name: 'Hana' }).waitFor();
  await screenshot(joon.page, 'history');
  const first = await shownMessages(joon.page);
  assert.deepEqual(first, texts.slice(-first.length), 'the latest page, oldest first');
  assert.ok(first.length < texts.length, 'not everything at once');
  await joon.page.getByRole('button', { name: 'Show older messages' }).click();
  await joon.page.getByText('history 1', { exact: true }).waitFor();
  assert.deepEqual(await shownMessages(joon.page), texts);
  assert.equal(await joon.page.getByRole('button', { name: 'Show older messages' }).count(), 0);
  await joon.context.close();
});
