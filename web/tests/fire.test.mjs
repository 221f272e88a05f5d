// A fire in the browser: a person sends 20 messages from a page served by
// dc1 while dc1 is SIGKILLed. Every message reaches the other person once,
// in order, and the page shows none twice. Prints MEASURE: the time from
// the SIGKILL to the page's first acknowledged message after it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, person, unique, signUp, befriend, kill, restart, lead, screenshot } from './lib.mjs';

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

  // The worst case: dc1 serves the page and leads the chat stream.
  await lead('CHAT', 'dc1');
  const box = alice.page.getByRole('textbox', { name: 'Message' });
  const acked = alice.page.getByRole('list', { name: 'Messages' }).locator('li.msg.mine:not(.pending)');
  const texts = Array.from({ length: 20 }, (_, i) => `fire message ${i + 1}`);
  let killedAt = 0;
  let firstAck = null;
  let sixth = null;
  for (const [i, text] of texts.entries()) {
    await box.fill(text);
    await box.press('Enter');
    if (i === 4) {
      // Watch, in the page, for the first acknowledgement after the fire
      // while the person goes on typing.
      const before = await acked.count();
      firstAck = alice.page.waitForFunction((n) => document.querySelectorAll('ol.messages li.msg.mine:not(.pending)').length > n, before, { timeout: 60_000, polling: 10 })
        .then(() => performance.now());
      // That one may have been written before the fire; the first one
      // written after it (the sixth) goes through the new leader.
      sixth = alice.page.waitForFunction(() => [...document.querySelectorAll('ol.messages li.msg.mine:not(.pending) .text')]
        .some((e) => e.textContent === 'fire message 6'), null, { timeout: 60_000, polling: 10 }).then(() => performance.now());
      killedAt = performance.now();
      await kill('dc1');
    }
    await alice.page.waitForTimeout(100);
  }
  firstAck = await firstAck;
  console.log(`MEASURE first acknowledged message after SIGKILL of the page's DC: ${Math.round(firstAck - killedAt)} ms`);
  console.log(`MEASURE first message written after the SIGKILL acknowledged ${Math.round((await sixth) - killedAt)} ms after it`);

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
