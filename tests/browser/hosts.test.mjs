// An exam with hosts in Chromium, as on the day: the second full CKAD exam gives each task a host
// (a cluster of its own); the terminal starts on a base machine, `ssh <host>` goes to a host and
// `exit` comes back. Its first task, solved on the wrong host, scores nothing; solved on its own
// host in a second attempt, it scores its weight.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  artefacts, baseUrl, expectedProblems, hydrated, openBrowser, sessionStarted, signUp, waitForServer,
} from './browser.mjs';

// An administrator of its own (the second of ADMIN_EMAILS): the admin test's account was mailed a
// code within the last minute, and no second one is mailed that soon.
const ADMIN = process.env.ADMIN_EMAILS?.split(',')[1]?.trim() || 'grants@example.com';
const EXAM = 'Second CKAD full exam';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

/** The page's fetch of `path` with a JSON body, as the signed-in user of its browser. */
const post = (page, path, body) => page.evaluate(async ([path, body]) => {
  const response = await fetch(path, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}, [path, body]);

/** Waits until the first terminal's screen shows `text`. */
const screenShows = (page, text, timeout = 20_000) => page.waitForFunction(
  (text) => document.querySelector('.terminal[data-tab="1"] .xterm-rows')?.innerText.includes(text), text, { timeout },
);

/** Takes the exam: its first task's two commands typed on `host`; the graded first task's heading. */
async function takeTheExam(page, host, shot) {
  await page.goto(`${baseUrl}/exams`);
  await hydrated(page);
  await page.locator('.exam-card', { hasText: EXAM }).getByRole('button', { name: 'Start this exam' }).click();
  await page.waitForURL(`${baseUrl}/practice`);
  const session = await sessionStarted(page, 300_000); // three clusters and 17 tasks on a busy machine
  assert.equal(session.exam, 'ckad-full-2');
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 30_000 });
  // The terminal starts on the base machine, which has no cluster.
  await screenShows(page, 'ckad@base');
  // The first task says where it is solved.
  const where = page.locator('.task-host');
  assert.equal(await where.getAttribute('data-host'), 'ckad7326');
  assert.match(await where.innerText(), /Solve this task on host ckad7326: ssh ckad7326/);

  await page.locator('.terminal[data-tab="1"] .xterm').click();
  await page.keyboard.type('ssh nowhere\n');
  await screenShows(page, 'ssh: Could not resolve hostname nowhere');
  await page.keyboard.type(`ssh ${host}\n`);
  await screenShows(page, `ckad@${host}`);
  await page.keyboard.type('kubectl -n invoices create job export-now --from=cronjob/invoice-export\n');
  await page.keyboard.type(`kubectl -n invoices patch cronjob invoice-export -p '{"spec":{"suspend":true}}'\n`);
  await page.keyboard.type('kubectl -n invoices wait --for=condition=complete job/export-now --timeout=60s\n');
  if (host === 'ckad7326') {
    await screenShows(page, 'job.batch/export-now condition met', 70_000);
  } else {
    // The task's namespace is on its own host only.
    await screenShows(page, 'namespaces "invoices" not found');
  }
  await page.screenshot({ path: `${artefacts}/${shot}.png` });
  await page.keyboard.type('exit\n');
  await page.waitForFunction(() => {
    const lines = document.querySelector('.terminal[data-tab="1"] .xterm-rows')?.innerText.trim().split('\n') ?? [];
    return lines.at(-1)?.startsWith('ckad@base');
  });

  await page.getByRole('button', { name: 'End exam' }).click();
  const confirm = page.getByRole('dialog', { name: 'End the exam?' });
  await confirm.getByRole('button', { name: 'End exam' }).click();
  // Graded on every host's cluster, then all of them removed.
  await page.locator('.session-over[role="alert"]').waitFor({ timeout: 180_000 });
  await page.goto(`${baseUrl}/exams/results/${session.id}`);
  const first = page.locator('.graded-task').first().locator('h2');
  await first.waitFor();
  assert.equal(await page.locator('.graded-task').count(), 17);
  return first.innerText();
}

test('the first task of an exam with hosts scores only when solved on its host', async () => {
  const page = await browser.context.newPage();
  page.setDefaultTimeout(60_000);
  await page.goto(`${baseUrl}/signup`);
  await page.waitForLoadState('networkidle');
  const email = `hosts${Date.now()}@example.com`;
  await signUp(page, email, 'Host Hopper');

  // A full exam needs a pass: an administrator grants one (in a browser of its own), the learner
  // activates it.
  const admin = await openBrowser();
  let granted;
  try { // an open browser would keep the test's process alive after a failure
    const adminPage = await admin.context.newPage();
    await adminPage.goto(`${baseUrl}/signup`);
    await signUp(adminPage, ADMIN, 'Admin');
    granted = await post(adminPage, '/api/v1/access/grant', { email, plan: 'pass-1w' });
  } finally {
    await admin.close();
  }
  assert.equal(granted.status, 201, JSON.stringify(granted));
  assert.equal((await post(page, `/api/v1/access/activate/${granted.body.id}`)).status, 200);

  const wrong = await takeTheExam(page, 'ckad5601', 'exam-hosts-wrong');
  assert.match(wrong, /^Run a scheduled job now and pause its schedule — 0 \/ \d+$/);
  const right = await takeTheExam(page, 'ckad7326', 'exam-hosts-right');
  const [, points, weight] = right.match(/ — (\d+) \/ (\d+)$/);
  assert.ok(Number(weight) > 0 && points === weight, right);
  await page.locator('.graded-task').first().screenshot({ path: `${artefacts}/exam-hosts-result.png` });
  assert.deepEqual(browser.problems.filter((p) => !expectedProblems(p)), []);
  await page.close();
});
