// The admin page in Chromium: a learner is refused; an administrator (an email in ADMIN_EMAILS, set
// by scripts/test.sh) sees the learner's live session on a real cluster and terminates it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { artefacts, baseUrl, expectedProblems, hydrated, openBrowser, sessionStarted, signUp, waitForServer } from './browser.mjs';

const ADMIN = process.env.ADMIN_EMAILS?.split(',')[0]?.trim() || 'admin@example.com';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

test('an administrator sees a live session and terminates it; a learner may not', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${baseUrl}/signup`);
  await page.waitForLoadState('networkidle');
  await signUp(page, `learner${Date.now()}@example.com`, 'Sam');
  const started = await page.evaluate(async () => {
    const response = await fetch('/api/session/start', { method: 'POST' });
    await response.text();
    return response.status;
  });
  assert.equal(started, 202);
  const session = await sessionStarted(page);

  const refused = await page.goto(`${baseUrl}/admin`);
  assert.equal(refused.status(), 403);
  await page.getByRole('alert').filter({ hasText: 'Only administrators' }).waitFor();
  await page.screenshot({ path: `${artefacts}/admin-refused.png` });

  // The administrator signs in in the same browser, proving the address with a mailed code (which
  // sets the password anew when the account exists after a first run).
  await page.evaluate(async () => (await fetch('/api/auth/logout', { method: 'POST' })).text());
  await signUp(page, ADMIN, 'Admin');

  const response = await page.goto(`${baseUrl}/admin`);
  assert.equal(response.status(), 200);
  await hydrated(page);
  const row = page.locator(`tr[data-session="${session.id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /started/);
  assert.match(await page.locator('.capacity-figure').innerText(), /^\d+ of \d+ seats in use$/);
  await page.screenshot({ path: `${artefacts}/admin.png` });

  await row.getByRole('button', { name: 'Terminate' }).click();
  const dialog = page.getByRole('dialog', { name: 'Terminate this session?' });
  await dialog.waitFor();
  await page.screenshot({ path: `${artefacts}/admin-terminate-dialog.png` });
  await dialog.getByRole('button', { name: 'Terminate' }).click();
  await row.waitFor({ state: 'detached', timeout: 60_000 });
  await page.getByText('The session was terminated.').waitFor();
  // The refusal on purpose: the learner's 403.
  const refusals = /status of 403/;
  assert.deepEqual(browser.problems.filter((p) => !refusals.test(p) && !expectedProblems(p)), []);
  await page.close();
});
