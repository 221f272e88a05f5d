// The outbox: messages typed while no DC acknowledges them are kept in the
// browser, shown as pending, and sent once after a reload, even when the
// platform stored them before the page lost the answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, person, unique, signUp, befriend, shownMessages } from './lib.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('a reload while messages are pending sends them once', async () => {
  const alice = await person(browser, 'dc2');
  const bob = await person(browser, 'dc3');
  await signUp(alice.page, 'Alice Outbox', unique('alice'));
  const bobLogin = unique('bob');
  await signUp(bob.page, 'Bob Outbox', bobLogin);
  const conv = await befriend(alice, 'Alice Outbox', bob, 'Bob Outbox', bobLogin);

  // A message whose text says "lost answer" reaches the platform, but the
  // answer never reaches the page; anything else never leaves the browser.
  // The page sends one message at a time, so only the first is stored
  // before the reload.
  // The page hears no events either, so nothing but a send's own answer
  // could tell it a message was stored.
  await alice.context.routeWebSocket('**/v1/events*', (ws) => ws.close());
  let n = 0;
  await alice.context.route('**/v1/conversations/*/messages', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    n++;
    const body = route.request().postData() ?? '';
    if (body.includes('lost answer')) {
      await route.fetch().catch(() => {});
    }
    return route.abort('connectionreset');
  });
  // From a fresh page load: a stream opened before the routes would not
  // pass through them.
  await alice.page.reload();
  const box = alice.page.getByRole('textbox', { name: 'Message' });
  await box.waitFor();
  for (const text of ['lost answer 1', 'lost answer 2', 'never sent 3']) {
    await box.fill(text);
    await box.press('Enter');
  }
  const pending = alice.page.getByRole('list', { name: 'Messages' }).locator('li.msg.pending');
  await pending.nth(2).waitFor();
  assert.equal(await pending.count(), 3);
  await alice.page.getByText('Sending…').first().waitFor();
  await alice.page.waitForTimeout(1500); // a few attempts fail
  assert.ok(n >= 3, `${n} attempts`);

  await alice.context.unrouteAll({ behavior: 'ignoreErrors' });
  await alice.page.reload();
  await alice.page.waitForFunction(() => document.querySelectorAll('ol.messages li.msg:not(.pending) .text').length >= 3 && !document.querySelector('ol.messages li.msg.pending'), null, { timeout: 30_000 });
  const want = ['lost answer 1', 'lost answer 2', 'never sent 3'];
  assert.deepEqual(await shownMessages(alice.page), want);
  await bob.page.goto(`/chats/${conv}`);
  await bob.page.getByText('never sent 3').waitFor();
  assert.deepEqual(await shownMessages(bob.page), want);
  await alice.context.close();
  await bob.context.close();
});
