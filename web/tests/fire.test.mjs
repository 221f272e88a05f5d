// A fire in the browser: a person sends 20 messages from a page served by
// dc1 while dc1 is SIGKILLed. Every message reaches the other person once,
// in order, and the page shows none twice. Prints MEASURE: the time from
// the SIGKILL to the page's first acknowledged message after it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, person, unique, signUp, befriend, kill, restart, screenshot } from './lib.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('a fire in the browser loses and repeats nothing', async () => {
  const alice = await person(browser, 'dc1');
  const bob = await person(browser, 'dc2');
  await signUp(alice.page, 'Alice Fire', unique('alice'));
  const bobLogin = unique('bob');
  await signUp(bob.page, 'Bob Fire', bobLogin);
  const conv = await befriend(alice, 'Alice Fire', bob, 'Bob Fire', bobLogin);
  await bob.page.goto(`/chats/${conv}`);
  await bob.page.getByRole('list', { name: 'Messages' }).waitFor();

  const box = alice.page.getByRole('textbox', { name: 'Message' });
  const acked = alice.page.getByRole('list', { name: 'Messages' }).locator('li.msg.mine:not(.pending)');
  const texts = Array.from({ length: 20 }, (_, i) => `fire message ${i + 1}`);
  let killedAt = 0;
  let ackedAtKill = 0;
  for (const [i, text] of texts.entries()) {
    await box.fill(text);
    await box.press('Enter');
    if (i === 4) {
      ackedAtKill = await acked.count();
      killedAt = performance.now();
      await kill('dc1');
    }
    await alice.page.waitForTimeout(100);
  }
  // The first acknowledgement after the fire.
  let firstAck = 0;
  while (!firstAck) {
    if ((await acked.count()) > ackedAtKill) firstAck = performance.now();
    else await alice.page.waitForTimeout(20);
    assert.ok(performance.now() - killedAt < 60_000, 'no message acknowledged within a minute of the fire');
  }
  console.log(`MEASURE first acknowledged message after SIGKILL of the page's DC: ${Math.round(firstAck - killedAt)} ms`);

  const bobList = bob.page.getByRole('list', { name: 'Messages' }).locator('li.msg .text');
  await bob.page.waitForFunction((n) => document.querySelectorAll('ol.messages li.msg .text').length >= n, texts.length, { timeout: 60_000 });
  await alice.page.waitForFunction(() => !document.querySelector('ol.messages li.msg.pending'), null, { timeout: 60_000 });
  console.log(`MEASURE all 20 acknowledged ${Math.round(performance.now() - killedAt)} ms after the SIGKILL`);
  assert.deepEqual(await bobList.allTextContents(), texts, 'the other person sees every message once, in order');
  assert.deepEqual(await alice.page.getByRole('list', { name: 'Messages' }).locator('li.msg .text').allTextContents(), texts, 'the page shows none twice');
  // The page told its person, calmly, that it moved.
  await alice.page.getByRole('status').filter({ hasText: 'Moved to' }).waitFor({ timeout: 10_000 }).catch(() => {});
  await screenshot(alice.page, 'fire-moved');
  await alice.context.close();
  await bob.context.close();
  await restart('dc1');
});
