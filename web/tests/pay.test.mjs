// Money through the app: paying a friend and a red envelope in a
// conversation, a shop charging the person's payment code (and the person
// paying a shop's QR), and a mini-app's pay request approved in the wallet.
// Shops, mini-apps and the third members of groups act through the API,
// as they would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import jsQR from 'jsqr';
import { launch, person, unique, signUp, screenshot, checkA11y, befriend, apiCall, apiLogin, endpoints, password, eventually } from './lib.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

/** Someone who only uses the API (a shop, a developer, a third member). */
async function apiPerson(dc, name) {
  const login = unique(name.split(' ')[0]);
  const r = await apiCall(dc, 'POST', '/v1/accounts', { body: { name, email: login, password } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const s = await apiLogin(dc, login);
  return { login, token: s.access_token, id: s.user_id };
}

async function topUp(dc, token, amount) {
  const r = await apiCall(dc, 'POST', '/v1/wallet/topups', { token, body: { id: crypto.randomUUID(), amount, currency: 'KRW' } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

async function makeFriends(dc, a, b) {
  let r = await apiCall(dc, 'POST', '/v1/friends/requests', { token: a.token, body: { user_id: b.id } });
  assert.ok(r.status < 300, JSON.stringify(r.body));
  r = await apiCall(dc, 'POST', `/v1/friends/requests/${a.id}/accept`, { token: b.token });
  assert.ok(r.status < 300, JSON.stringify(r.body));
}

const won = (n) => `₩${n.toLocaleString('en-US')}`;

/** The person's available balance as the page shows it. */
function shownBalance(page, amount) {
  return page.getByText(`Available ${won(amount)}`).first();
}

test('pay a friend from the conversation; both see the card', async () => {
  const alice = await person(browser, 'dc1');
  const bob = await person(browser, 'dc2');
  const bobLogin = unique('bob');
  await signUp(alice.page, 'Alice Kim', unique('alice'));
  await signUp(bob.page, 'Bob Lee', bobLogin);
  const conv = await befriend(alice, 'Alice Kim', bob, 'Bob Lee', bobLogin);

  // Alice tops up in her wallet: amount, review, confirm.
  await alice.page.goto('/wallet');
  await alice.page.getByRole('heading', { name: 'Wallet' }).waitFor();
  await alice.page.getByText('No money has moved yet').waitFor();
  await checkA11y(alice.page, 'empty wallet');
  await screenshot(alice.page, 'wallet-empty');
  await alice.page.getByRole('button', { name: 'Top up' }).click();
  const sheet = alice.page.getByRole('dialog', { name: 'Top up from your bank' });
  await sheet.getByLabel('Amount').fill('50000');
  await sheet.getByText('₩50,000', { exact: true }).waitFor();
  await checkA11y(alice.page, 'top-up sheet');
  await screenshot(alice.page, 'wallet-topup');
  await sheet.getByRole('button', { name: 'Next' }).click();
  await sheet.getByText('Add ₩50,000 to your wallet from your bank?').waitFor();
  await sheet.getByRole('button', { name: 'Top up ₩50,000' }).click();
  await alice.page.getByRole('status').getByText('₩50,000 added to your wallet.').waitFor();
  await alice.page.getByRole('region', { name: 'Balance' }).getByText('₩50,000').waitFor();
  await alice.page.getByRole('list', { name: 'Statement' }).getByText('+₩50,000').waitFor();

  // Bob has the conversation open; Alice pays him from it.
  await bob.page.goto(`/chats/${conv}`);
  await bob.page.getByRole('list', { name: 'Messages' }).waitFor();
  await alice.page.goto(`/chats/${conv}`);
  await alice.page.getByRole('button', { name: 'Pay or give a red envelope' }).click();
  const pay = alice.page.getByRole('dialog', { name: 'Send money' });
  await pay.getByText('Available ₩50,000').waitFor();
  await pay.getByText('To Bob Lee').waitFor();
  await pay.getByLabel('Amount').fill('12,000');
  await pay.getByLabel('Memo (optional)').fill('Lunch at the market');
  await checkA11y(alice.page, 'pay sheet');
  await screenshot(alice.page, 'pay-sheet');
  await pay.getByRole('button', { name: 'Next' }).click();
  await pay.getByText('Send ₩12,000 to Bob Lee?').waitFor();
  await screenshot(alice.page, 'pay-sheet-review');
  await pay.getByRole('button', { name: 'Send ₩12,000' }).click();
  await pay.waitFor({ state: 'detached' });

  const aliceCard = alice.page.getByRole('list', { name: 'Messages' }).getByRole('article', { name: 'Payment of ₩12,000' });
  await aliceCard.getByText('Sent to Bob Lee').waitFor();
  await aliceCard.getByText('Lunch at the market').waitFor();
  const bobCard = bob.page.getByRole('list', { name: 'Messages' }).getByRole('article', { name: 'Payment of ₩12,000' });
  await bobCard.getByText('Received from Alice Kim').waitFor({ timeout: 15_000 });
  await checkA11y(bob.page, 'conversation with a payment');
  await screenshot(bob.page, 'conversation-payment');

  // The money moved: Bob's wallet has it, from Alice.
  await bob.page.goto('/wallet');
  await bob.page.getByRole('region', { name: 'Balance' }).getByText('₩12,000').waitFor();
  await bob.page.getByRole('list', { name: 'Statement' }).getByText('From Alice Kim').waitFor();
  await alice.page.goto('/wallet');
  await alice.page.getByRole('region', { name: 'Balance' }).getByText('₩38,000').waitFor();
  await alice.page.getByRole('list', { name: 'Statement' }).getByText('Paid Bob Lee').waitFor();
  await checkA11y(alice.page, 'wallet');
  await screenshot(alice.page, 'wallet');

  // Send money from the wallet to a friend, with a confirmation.
  await alice.page.getByRole('button', { name: 'Send money' }).click();
  const send = alice.page.getByRole('dialog', { name: 'Send money' });
  await send.getByRole('radio', { name: 'Bob Lee' }).check();
  await send.getByLabel('Amount').fill('3000');
  await checkA11y(alice.page, 'send sheet');
  await screenshot(alice.page, 'wallet-send');
  await send.getByRole('button', { name: 'Next' }).click();
  await send.getByRole('button', { name: 'Send ₩3,000' }).click();
  await alice.page.getByRole('status').getByText('₩3,000 sent to Bob Lee.').waitFor();
  await alice.page.getByRole('region', { name: 'Balance' }).getByText('₩35,000').waitFor();
  // Bob's open wallet shows it without a reload.
  await bob.page.getByRole('region', { name: 'Balance' }).getByText('₩15,000').waitFor({ timeout: 15_000 });

  const errors = [...alice.errors, ...bob.errors].filter((e) => !/Failed to load resource/.test(e));
  assert.deepEqual(errors, []);
  await alice.context.close();
  await bob.context.close();
});

test('a red envelope in a group: members open it and the card shows the claims', async () => {
  const alice = await person(browser, 'dc1');
  const bob = await person(browser, 'dc2');
  const aliceLogin = unique('alice');
  const bobLogin = unique('bob');
  await signUp(alice.page, 'Alice Kim', aliceLogin);
  await signUp(bob.page, 'Bob Lee', bobLogin);
  const a = await apiLogin('dc1', aliceLogin);
  const b = await apiLogin('dc2', bobLogin);
  const aa = { token: a.access_token, id: a.user_id };
  const bb = { token: b.access_token, id: b.user_id };
  const carol = await apiPerson('dc3', 'Carol Park');
  await makeFriends('dc1', aa, bb);
  await makeFriends('dc1', aa, carol);
  await topUp('dc1', aa.token, 100_000);
  const g = await apiCall('dc1', 'POST', '/v1/conversations', { token: aa.token, body: { kind: 'group', title: 'Jeju trip', members: [bb.id, carol.id] } });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  const conv = g.body.conversation_id;

  await alice.page.goto(`/chats/${conv}`);
  await alice.page.getByRole('heading', { name: 'Jeju trip' }).waitFor();
  await alice.page.getByRole('button', { name: 'Pay or give a red envelope' }).click();
  let sheet = alice.page.getByRole('dialog', { name: 'Send money' });
  await sheet.getByRole('button', { name: 'Red envelope' }).click();
  sheet = alice.page.getByRole('dialog', { name: 'Red envelope' });
  await sheet.getByLabel('Amount').fill('10000');
  assert.equal(await sheet.getByLabel('Number of shares').inputValue(), '2');
  assert.equal(await sheet.getByRole('button', { name: 'Random' }).getAttribute('aria-pressed'), 'true');
  await sheet.getByLabel('Memo (optional)').fill('Happy new year!');
  await checkA11y(alice.page, 'envelope sheet');
  await screenshot(alice.page, 'envelope-sheet');
  await sheet.getByRole('button', { name: 'Next' }).click();
  await sheet.getByText('₩10,000 in a red envelope, 2 shares (Random)').waitFor();
  await sheet.getByRole('button', { name: 'Send the envelope' }).click();
  await sheet.waitFor({ state: 'detached' });
  const aliceCard = alice.page.getByRole('article', { name: 'Red envelope of ₩10,000' });
  await aliceCard.getByText('Your red envelope').waitFor();
  await aliceCard.getByText('0 of 2 opened').waitFor();

  // Bob opens it on his DC.
  await bob.page.goto(`/chats/${conv}`);
  const bobCard = bob.page.getByRole('article', { name: 'Red envelope of ₩10,000' });
  await bobCard.getByText('Happy new year!').waitFor();
  await bobCard.getByRole('button', { name: 'Open red envelope from Alice Kim' }).click();
  const got = await bobCard.getByText(/^You got ₩[\d,]+$/).textContent();
  const share = Number(got.replace(/\D/g, ''));
  assert.ok(share >= 1 && share <= 9_999, `a random share of the envelope: ${got}`);
  await bobCard.getByText('1 of 2 opened').waitFor();
  await checkA11y(bob.page, 'conversation with an envelope');
  await screenshot(bob.page, 'envelope-claimed');

  // Carol claims the rest through the API: the envelope is empty, and
  // Alice's card shows it without a reload.
  const env = await envelopeId(aa.token, conv);
  const c = await apiCall('dc3', 'POST', `/v1/envelopes/${env}/claim`, { token: carol.token });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  assert.equal(c.body.claims[carol.id] + share, 10_000);
  await aliceCard.getByText('All opened').waitFor({ timeout: 15_000 });
  await aliceCard.getByText(`Bob Lee ${won(share)}`).waitFor();
  await aliceCard.getByText(`Carol Park ${won(10_000 - share)}`).waitFor();
  await screenshot(alice.page, 'envelope-emptied');
  // Bob's wallet has his share.
  await bob.page.goto('/wallet');
  await bob.page.getByRole('region', { name: 'Balance' }).getByText(won(share)).waitFor();
  const errors = [...alice.errors, ...bob.errors].filter((e) => !/Failed to load resource/.test(e));
  assert.deepEqual(errors, []);
  await alice.context.close();
  await bob.context.close();
});

/** The envelope of the conversation's newest payment card. */
async function envelopeId(token, conv) {
  return eventually(async () => {
    const r = await apiCall('dc1', 'GET', `/v1/conversations/${conv}/messages?limit=50`, { token });
    const card = r.body.messages.filter((m) => m.kind === 'payment' && m.payment?.type === 'envelope').at(-1);
    assert.ok(card, JSON.stringify(r.body));
    return card.payment.envelope_id;
  });
}

/** Reads the QR the page drew (one SVG path of 1×1 squares) the way a shop's scanner would. */
async function decodeShownQR(page) {
  const { d, size } = await page.getByRole('img', { name: 'Payment code QR' }).evaluate((svg) => ({
    d: svg.querySelector('path').getAttribute('d'),
    size: Number(svg.getAttribute('viewBox').split(' ')[2]),
  }));
  const scale = 6;
  const w = size * scale;
  const px = new Uint8ClampedArray(w * w * 4).fill(255);
  for (const [, x, y] of d.matchAll(/M(\d+) (\d+)/g)) {
    for (let dy = 0; dy < scale; dy++) {
      for (let dx = 0; dx < scale; dx++) {
        const i = ((Number(y) * scale + dy) * w + Number(x) * scale + dx) * 4;
        px[i] = px[i + 1] = px[i + 2] = 0;
      }
    }
  }
  return jsQR(px, w, w)?.data;
}

test('a shop charges the payment code and the page shows the new balance; paying a shop QR', async () => {
  const me = await person(browser, 'dc2');
  const login = unique('mina');
  await signUp(me.page, 'Mina Seo', login);
  const mine = await apiLogin('dc2', login);
  await topUp('dc2', mine.access_token, 50_000);
  const shop = await apiPerson('dc3', 'Corner Mart');
  const reg = await apiCall('dc3', 'POST', '/v1/merchants', { token: shop.token, body: { name: 'Corner Mart' } });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));

  await me.page.goto('/pay');
  await me.page.getByRole('heading', { name: 'Pay in a shop' }).waitFor();
  await me.page.getByRole('img', { name: 'Payment code QR' }).waitFor();
  await shownBalance(me.page, 50_000).waitFor();
  const text = await me.page.getByText(/\d{4} \d{4} \d{4} \d{4} \d{2}/).textContent();
  const code = text.replace(/\D/g, '');
  assert.equal(code.length, 18, text);
  assert.equal(await decodeShownQR(me.page), code, 'the QR holds the digits shown');
  await me.page.getByText(/Renews in \d+ s/).waitFor();
  await checkA11y(me.page, 'payment code');
  await screenshot(me.page, 'pay-code');

  // The shop's point of sale charges the code it scanned.
  const sale = await apiCall('dc3', 'POST', '/v1/merchants/charges', { token: shop.token, body: { id: crypto.randomUUID(), code, amount: 4_500 } });
  assert.equal(sale.status, 201, JSON.stringify(sale.body));
  // No reload: the page reads the balance while it is visible.
  await me.page.getByRole('status').getByText('Paid ₩4,500').waitFor({ timeout: 15_000 });
  await shownBalance(me.page, 45_500).waitFor();
  // A code pays once: the page shows a new one.
  await me.page.waitForFunction((old) => !document.body.textContent.replace(/\s/g, '').includes(old), code, { timeout: 15_000 });
  await screenshot(me.page, 'pay-code-paid');

  // Paying the shop's QR: typed (the test browser has no camera), then confirmed.
  const qr = await apiCall('dc3', 'GET', '/v1/merchants/me/qr', { token: shop.token });
  assert.equal(qr.status, 200, JSON.stringify(qr.body));
  await me.page.getByRole('button', { name: 'Scan' }).click();
  await me.page.getByText(/camera is not available|camera access was refused/i).waitFor();
  await me.page.getByLabel('Shop’s code').fill('superapp:something-else');
  await me.page.getByRole('button', { name: 'Continue' }).click();
  await me.page.getByRole('alert').getByText('That is not a superapp shop code.').waitFor();
  await checkA11y(me.page, 'scan');
  await screenshot(me.page, 'pay-scan');
  await me.page.getByLabel('Shop’s code').fill(qr.body.qr);
  await me.page.getByRole('button', { name: 'Continue' }).click();
  await me.page.getByRole('heading', { name: /^Pay Shop / }).waitFor();
  await me.page.getByLabel('Amount').fill('3000');
  await me.page.getByRole('button', { name: 'Next' }).click();
  await checkA11y(me.page, 'confirm a shop payment');
  await screenshot(me.page, 'pay-confirm');
  await me.page.getByRole('button', { name: 'Pay ₩3,000' }).click();
  await me.page.getByRole('heading', { name: /^Paid ₩3,000 to Shop / }).waitFor();
  await me.page.getByText('Balance ₩42,500').waitFor();
  await screenshot(me.page, 'pay-done');
  await eventually(async () => {
    const st = await apiCall('dc3', 'GET', '/v1/merchants/statement', { token: shop.token });
    assert.deepEqual(st.body.entries.map((e) => [e.kind, e.amount]).sort(), [['sale', 3_000], ['sale', 4_500]]);
  });

  // The wallet, open on its own, follows a sale too.
  await me.page.goto('/wallet');
  await me.page.getByRole('region', { name: 'Balance' }).getByText('₩42,500').waitFor();
  const code2 = (await apiCall('dc2', 'POST', '/v1/pay/codes', { token: mine.access_token })).body.code;
  const sale2 = await apiCall('dc3', 'POST', '/v1/merchants/charges', { token: shop.token, body: { id: crypto.randomUUID(), code: code2, amount: 2_500 } });
  assert.equal(sale2.status, 201, JSON.stringify(sale2.body));
  await me.page.getByRole('region', { name: 'Balance' }).getByText('₩40,000').waitFor({ timeout: 15_000 });
  await me.page.getByRole('list', { name: 'Statement' }).getByText('−₩2,500').waitFor();

  // In Korean, won are written as Korean apps write them.
  await me.page.evaluate(() => localStorage.setItem('superapp.lang', 'ko'));
  await me.page.reload();
  await me.page.getByRole('region', { name: '잔액' }).getByText('40,000원').waitFor();
  await checkA11y(me.page, 'wallet in Korean');
  await screenshot(me.page, 'wallet-ko');
  await me.page.goto('/pay');
  await me.page.getByRole('img', { name: '결제 코드 QR' }).waitFor();
  await screenshot(me.page, 'pay-code-ko');
  assert.deepEqual(me.errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await me.context.close();
});

test('a mini-app pay request shows in the wallet; approve one, decline another', async () => {
  const dev = await apiPerson('dc1', 'Dana Developer');
  const c = await apiCall('dc1', 'POST', '/v1/oauth/clients', { token: dev.token, body: { name: 'Taxi Plus', redirect_uris: ['https://taxi.example.com/cb'], scopes: ['pay'] } });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const config = await oidc.discovery(new URL(`${endpoints.dc1}/oidc`), c.body.client_id, c.body.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });

  const me = await person(browser, 'dc3');
  const login = unique('jun');
  await signUp(me.page, 'Jun Park', login);
  const mine = await apiLogin('dc3', login);
  await topUp('dc3', mine.access_token, 30_000);

  // Jun lets Taxi Plus ask him to pay (the consent, through the API).
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: 'https://taxi.example.com/cb', scope: 'openid pay', state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const auth = await fetch(url, { redirect: 'manual' });
  const requestId = new URL(auth.headers.get('location'), endpoints.dc1).searchParams.get('request');
  assert.ok(requestId, `authorize: ${auth.status} ${auth.headers.get('location')}`);
  const ok = await apiCall('dc1', 'POST', `/v1/oauth/requests/${requestId}/approve`, { token: mine.access_token });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const tokens = await oidc.authorizationCodeGrant(config, new URL(ok.body.redirect_to), { pkceCodeVerifier: verifier, expectedState: state });

  const ask = async (id, amount, description) => {
    const r = await apiCall('dc1', 'POST', '/v1/miniapp/pay-requests', { token: tokens.access_token, body: { id, amount, description } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.pay_request_id;
  };
  await me.page.goto('/wallet');
  await me.page.getByRole('region', { name: 'Balance' }).getByText('₩30,000').waitFor();
  const ride = await ask('ride-1', 8_000, 'Ride to Gangnam Station');
  const tip = await ask('tip-1', 2_000, 'Tip for the driver');
  // The open wallet picks the requests up by itself.
  const list = me.page.getByRole('list', { name: 'Pay requests' });
  await list.getByText('Ride to Gangnam Station').waitFor({ timeout: 15_000 });
  await list.getByText('Tip for the driver').waitFor();
  await checkA11y(me.page, 'wallet with pay requests');
  await screenshot(me.page, 'wallet-pay-requests');

  await list.getByRole('button', { name: 'Approve: Taxi Plus ₩8,000' }).click();
  const sheet = me.page.getByRole('dialog', { name: 'Pay requests' });
  await sheet.getByText('Pay ₩8,000 to Taxi Plus?').waitFor();
  await checkA11y(me.page, 'approve sheet');
  await screenshot(me.page, 'wallet-approve');
  await sheet.getByRole('button', { name: 'Pay ₩8,000' }).click();
  await me.page.getByRole('status').getByText('Paid ₩8,000 to Taxi Plus.').waitFor();
  await me.page.getByRole('region', { name: 'Balance' }).getByText('₩22,000').waitFor();
  await list.getByText('Ride to Gangnam Station').waitFor({ state: 'detached' });

  await list.getByRole('button', { name: 'Decline: Taxi Plus ₩2,000' }).click();
  await me.page.getByRole('status').getByText('Declined.').waitFor();
  await list.waitFor({ state: 'detached' });
  await me.page.getByRole('region', { name: 'Balance' }).getByText('₩22,000').waitFor();

  const seen = async (id) => (await apiCall('dc1', 'GET', `/v1/miniapp/pay-requests/${id}`, { token: tokens.access_token })).body.status;
  await eventually(async () => assert.equal(await seen(ride), 'approved'));
  await eventually(async () => assert.equal(await seen(tip), 'declined'));
  assert.deepEqual(me.errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await me.context.close();
});
