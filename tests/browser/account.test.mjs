// Signing up, out and in through the real pages: password accounts, and a code mailed through a
// real SMTP server (started by scripts/test.sh; its mailbox file is $MAILBOX).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { artefacts, baseUrl, hydrated, mailedCode, openBrowser, waitForServer } from './browser.mjs';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

const unique = () => `${Date.now()}${Math.floor(Math.random() * 1e6)}`;

test('a learner signs up, proves the email with the mailed code, signs out and back in with the password', async () => {
  const page = await browser.context.newPage();
  const email = `learner${unique()}@example.com`;
  await page.goto(`${baseUrl}/signup`);
  await hydrated(page);
  await page.getByLabel('Name').fill('Grace Hopper');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password (10 characters or more)').fill('compilers are fun');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText(`We sent a 6-digit code to ${email}`).waitFor();
  // Nobody is signed in until the code proves the address.
  assert.equal((await browser.context.cookies()).some((c) => c.name === 'ckad_access'), false);
  await page.getByLabel('Code').fill(await mailedCode(email));
  await page.getByRole('button', { name: 'Confirm' }).click();

  await page.waitForURL(`${baseUrl}/`);
  await page.locator('.user-name', { hasText: 'Grace Hopper' }).waitFor();
  await page.screenshot({ path: `${artefacts}/signed-in.png` });
  const cookies = await browser.context.cookies();
  const access = cookies.find((c) => c.name === 'ckad_access');
  assert.ok(access, 'the access cookie is set');
  assert.equal(access.httpOnly, true);
  assert.equal(access.sameSite, 'Lax');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
  assert.equal((await browser.context.cookies()).some((c) => c.name === 'ckad_access'), false);

  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
  const card = page.locator('.auth-card', { has: page.getByRole('heading', { name: 'Password' }) });
  await card.getByLabel('Email').fill(email);
  await card.getByLabel('Password').fill('wrong password!');
  await card.getByRole('button', { name: 'Sign in' }).click();
  await card.getByRole('alert').filter({ hasText: 'The email or the password is wrong' }).waitFor();
  await page.screenshot({ path: `${artefacts}/sign-in-error.png` });

  await card.getByLabel('Password').fill('compilers are fun');
  await card.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${baseUrl}/`);
  await page.locator('.user-name', { hasText: 'Grace Hopper' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
});

test('a learner signs in with a code from their mailbox', async () => {
  const page = await browser.context.newPage();
  const email = `coder${unique()}@example.com`;
  await page.goto(`${baseUrl}/signin`);
  await hydrated(page);
  const card = page.locator('.auth-card', { has: page.getByRole('heading', { name: 'Email me a code' }) });
  await card.getByLabel('Email').fill(email);
  await card.getByRole('button', { name: 'Send code' }).click();
  await card.getByText(`We sent a 6-digit code to ${email}`).waitFor();

  await card.getByLabel('Code').fill(await mailedCode(email));
  await page.screenshot({ path: `${artefacts}/code-entry.png` });
  await card.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${baseUrl}/`);
  await page.locator('.user-name', { hasText: email }).waitFor();
  // The one refusal these tests provoke on purpose is the wrong password's 401.
  assert.deepEqual(browser.problems.filter((p) => !p.includes('status of 401')), []);
});
