// Group conversations through the app: create with friends, talk, rename,
// make an admin, and leave.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, person, unique, signUp, befriend, screenshot, checkA11y, shownMessages } from './lib.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('a group: create, talk, rename, admins, leave', async () => {
  const ann = await person(browser, 'dc1');
  const ben = await person(browser, 'dc3');
  await signUp(ann.page, 'Ann Group', unique('ann'));
  const benLogin = unique('ben');
  await signUp(ben.page, 'Ben Group', benLogin);
  await befriend(ann, 'Ann Group', ben, 'Ben Group', benLogin);

  await ann.page.goto('/chats');
  await ann.page.getByRole('button', { name: 'New group' }).click();
  const sheet = ann.page.getByRole('form', { name: 'New group' });
  await sheet.getByLabel('Group name').fill('Weekend trip');
  await sheet.getByRole('checkbox', { name: /Ben Group/ }).check();
  await checkA11y(ann.page, 'new group');
  await screenshot(ann.page, 'new-group');
  await sheet.getByRole('button', { name: 'Create' }).click();
  await ann.page.waitForURL('**/chats/*');
  await ann.page.getByRole('heading', { name: 'Weekend trip' }).waitFor();
  const box = ann.page.getByRole('textbox', { name: 'Message' });
  await box.fill('Who brings the tent?');
  await box.press('Enter');

  await ben.page.goto('/chats');
  await ben.page.getByRole('link', { name: /Weekend trip/ }).click();
  await ben.page.getByText('Who brings the tent?').waitFor();
  assert.deepEqual(await shownMessages(ben.page), ['Who brings the tent?']);

  // Details: rename, make Ben an admin.
  await ann.page.getByRole('link', { name: 'Details' }).click();
  await ann.page.getByLabel('Group name').fill('Weekend camping');
  await ann.page.getByRole('button', { name: 'Rename' }).click();
  await ann.page.getByRole('heading', { name: 'Weekend camping' }).waitFor();
  await ann.page.getByRole('button', { name: 'Make admin' }).click();
  await ann.page.getByRole('list', { name: 'Members' }).getByText('Admin', { exact: true }).waitFor();
  await checkA11y(ann.page, 'group details');
  await screenshot(ann.page, 'group-details');

  await ben.page.getByRole('heading', { name: 'Weekend camping' }).waitFor({ timeout: 10_000 });
  // Ben leaves.
  await ben.page.getByRole('link', { name: 'Details' }).click();
  ben.page.once('dialog', (d) => d.accept());
  await ben.page.getByRole('button', { name: 'Leave group' }).click();
  await ben.page.waitForURL('**/chats');
  await ann.page.reload();
  await ann.page.getByRole('list', { name: 'Members' }).getByRole('listitem').first().waitFor();
  assert.equal(await ann.page.getByRole('list', { name: 'Members' }).getByRole('listitem').count(), 1);
  await ann.context.close();
  await ben.context.close();
});
