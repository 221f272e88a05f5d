// "Login with superapp" from a third-party app's side: a certified-style
// OpenID Connect client library (openid-client) runs the code flow with
// PKCE; the person logs in, sees the consent page and allows; the app gets
// an ID token and userinfo. A "Deny" returns access_denied to the app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as oidc from 'openid-client';
import { launch, person, unique, signUp, logIn, apiCall, apiLogin, endpoints, screenshot, checkA11y, password } from './lib.mjs';

let browser;
let app; // the third-party app's callback server
let callbackURL;
const callbacks = [];
before(async () => {
  browser = await launch();
  app = http.createServer((req, res) => {
    const u = new URL(req.url, callbackURL);
    if (u.pathname === '/cb') callbacks.push(u); // not the browser's favicon request
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>Taxi Plus</title><h1>Back at Taxi Plus</h1>');
  });
  await new Promise((r) => app.listen(0, '127.0.0.1', r));
  callbackURL = `http://127.0.0.1:${app.address().port}/cb`;
});
after(async () => {
  await browser?.close();
  app?.close();
});

async function registerApp() {
  const login = unique('dev');
  const r = await apiCall('dc1', 'POST', '/v1/accounts', { body: { name: 'Dana Developer', email: login, password } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const dev = await apiLogin('dc1', login);
  const c = await apiCall('dc1', 'POST', '/v1/oauth/clients', { token: dev.access_token, body: { name: 'Taxi Plus', redirect_uris: [callbackURL], scopes: ['profile'] } });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const issuer = new URL(`${endpoints.dc1}/oidc`);
  return oidc.discovery(issuer, c.body.client_id, c.body.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

async function authorize(config) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: callbackURL, scope: 'openid profile', state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { url, verifier, state };
}

test('a third-party app logs a person in through the consent page', async () => {
  const config = await registerApp();
  const me = await person(browser, 'dc1');
  const login = unique('erin');
  await signUp(me.page, 'Erin Cho', login);
  await me.page.goto('/settings');
  await me.page.getByRole('button', { name: 'Log out' }).click();
  await me.page.waitForURL('**/login');

  const flow = await authorize(config);
  await me.page.goto(flow.url.href);
  // Not logged in: log in first, then back to the consent page.
  await me.page.waitForURL('**/login?next=*');
  await logIn(me.page, login);
  await me.page.waitForURL('**/oauth/consent?request=*');
  await me.page.getByRole('heading', { level: 1, name: 'Taxi Plus' }).waitFor();
  await me.page.getByText('Registered by Dana Developer').waitFor();
  await me.page.getByText('See your name and status message').waitFor();
  await checkA11y(me.page, 'consent');
  await screenshot(me.page, 'consent');
  const consentURL = me.page.url();
  await me.page.getByRole('button', { name: 'Allow' }).click();
  await me.page.waitForURL(`${callbackURL}?*`);
  // An answered request cannot be answered again.
  await me.page.goto(consentURL);
  await me.page.getByText('This request was already answered.', { exact: false }).waitFor();
  assert.equal(await me.page.getByRole('button', { name: 'Allow' }).count(), 0);

  const tokens = await oidc.authorizationCodeGrant(config, callbacks.at(-1), { pkceCodeVerifier: flow.verifier, expectedState: flow.state });
  const claims = tokens.claims();
  assert.ok(claims?.sub, 'an ID token with a subject');
  const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.name, 'Erin Cho');

  // The app is listed under Apps, and can be revoked there.
  await me.page.goto(`${endpoints.dc1}/apps`);
  await me.page.getByRole('list', { name: 'Apps you allowed' }).getByText('Taxi Plus').waitFor();
  await checkA11y(me.page, 'apps');
  await screenshot(me.page, 'apps');

  // Deny: the app hears access_denied.
  const denied = await authorize(config);
  await me.page.goto(denied.url.href);
  await me.page.waitForURL('**/oauth/consent?request=*');
  await me.page.getByRole('button', { name: 'Deny' }).click();
  await me.page.waitForURL(`${callbackURL}?*`);
  const cb = callbacks.at(-1);
  assert.equal(cb.searchParams.get('error'), 'access_denied');
  await assert.rejects(
    oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: denied.verifier, expectedState: denied.state }),
    (err) => err.error === 'access_denied',
  );
  await me.context.close();
});
