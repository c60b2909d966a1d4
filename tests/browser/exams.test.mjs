// The free mock exam in Chromium: a learner starts it from the exams page, the session comes up
// with the exam's tasks (flags and notepad kept across a reload, a font-size control), they stop
// it, and the graded result shows every check with its reason and the reference solutions.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { artefacts, baseUrl, expectedProblems, openBrowser, signUp, waitForServer } from './browser.mjs';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

test('a learner takes the free mock exam and reads the graded result', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${baseUrl}/signup`);
  await page.waitForLoadState('networkidle');
  const email = `exam${Date.now()}@example.com`;
  await signUp(page, email, 'Exam Taker');

  await page.goto(`${baseUrl}/exams`);
  await page.getByRole('heading', { name: 'Mock exams' }).waitFor();
  await page.waitForFunction(() => performance.getEntriesByType('resource').some((r) => r.name.endsWith('.wasm')));
  await page.waitForLoadState('networkidle');
  const free = page.locator('.exam-card', { hasText: 'CKAD mock exam (free)' });
  await free.getByText('5 tasks · 30 minutes').waitFor();
  // The two full CKAD exams need an access pass; the mocks are free.
  assert.equal(await page.locator('.exam-card', { hasText: 'Needs an access pass.' }).count(), 2);
  await page.screenshot({ path: `${artefacts}/exams.png` });
  await free.getByRole('button', { name: 'Start this exam' }).click();
  await page.waitForURL(`${baseUrl}/practice`);

  const status = await page.evaluate(async () => {
    for (let i = 0; i < 240; i += 1) {
      const s = await (await fetch('/api/session/status')).json();
      if (s.status !== 'provisioning') return s;
      await new Promise((r) => setTimeout(r, 250));
    }
    return null;
  });
  assert.equal(status.status, 'started');
  assert.equal(status.exam, 'ckad-mock-free');
  // The practice page shows the exam's tasks, without Check or Extend, beside its terminal.
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('.task-item').count(), 5);
  assert.equal(await page.getByRole('button', { name: 'Check', exact: true }).count(), 0);
  assert.equal(await page.getByRole('button', { name: /Extend/ }).count(), 0);
  // The exam's screen: weights in percent, flags for review, the documentation allowed on the day.
  const weights = await page.locator('.task-item .task-points').allInnerTexts();
  assert.ok(weights.every((w) => /^\d+%$/.test(w)), weights.join(' '));
  const percent = weights.reduce((sum, w) => sum + parseInt(w, 10), 0);
  assert.ok(percent >= 98 && percent <= 102, `weights add up to ${percent}%`);
  await page.locator('.task-item').nth(1).click();
  await page.getByRole('button', { name: 'Flag for review' }).click();
  assert.equal(await page.locator('.task-item').nth(1).getAttribute('data-flagged'), 'true');
  assert.equal(await page.locator('.task-item[data-flagged="true"]').count(), 1);
  await page.getByRole('button', { name: 'Unflag' }).waitFor();
  // The notepad and the flags are kept on the server: a reload finds them.
  const notepad = page.getByRole('textbox', { name: 'Notepad' });
  await notepad.fill('task 2: come back to the probe');
  await page.waitForFunction(async () => (await (await fetch('/api/desk')).json()).notepad === 'task 2: come back to the probe');
  await page.locator('[data-notepad-state="saved"]').waitFor();
  await page.reload();
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('.notepad-text')?.value === 'task 2: come back to the probe');
  await page.locator('.task-item').nth(1).and(page.locator('[data-flagged="true"]')).waitFor();
  assert.equal(await page.locator('.task-item[data-flagged="true"]').count(), 1);
  // A larger terminal font, kept for the next page.
  await page.getByRole('button', { name: 'Larger text' }).click();
  assert.equal(await page.locator('[data-font-size]').getAttribute('data-font-size'), '15');
  const docs = page.getByRole('link', { name: 'Kubernetes docs' });
  assert.equal(await docs.getAttribute('href'), 'https://kubernetes.io/docs/');
  assert.equal(await docs.getAttribute('target'), '_blank');
  await page.screenshot({ path: `${artefacts}/exam-practice.png` });
  // End exam asks first; the learner confirms.
  await page.getByRole('button', { name: 'End exam' }).click();
  const confirm = page.getByRole('dialog', { name: 'End the exam?' });
  await confirm.waitFor();
  await confirm.getByRole('button', { name: 'End exam' }).click();
  // Its answer comes once the exam is graded and its cluster gone (the terminal may say so first).
  await page.locator('.session-over[role="alert"]').waitFor({ timeout: 60_000 });

  // The dashboard keeps the exam history.
  await page.goto(`${baseUrl}/dashboard`);
  await page.getByRole('heading', { name: 'Mock exam results' }).waitFor();
  await page.getByRole('link', { name: 'CKAD mock exam (free)' }).click();
  await page.waitForURL(new RegExp(`${baseUrl}/exams/results/`));
  await page.locator('.score').waitFor();
  assert.equal(await page.getByRole('link', { name: 'Watch your terminal again' }).count(), 1);
  assert.match(await page.locator('.score').innerText(), /^0 \/ \d+ points \(0%\)/);
  assert.equal(await page.locator('.graded-task').count(), 5);
  const failed = page.locator('.check.failed');
  assert.ok(await failed.count() >= 5, 'every task has a failing check');
  assert.match(await failed.first().locator('.reason').innerText(), /\S/);
  await page.locator('.graded-task').first().getByText('Reference solution').click();
  await page.locator('.graded-task').first().locator('.solution pre').waitFor();
  await page.screenshot({ path: `${artefacts}/exam-result.png`, fullPage: true });
  assert.deepEqual(browser.problems.filter((p) => !expectedProblems(p)), []);
  await page.close();
});

test('a visitor browses the mock exams without an error and is asked to sign in', async () => {
  // A browser of its own: the learner above is signed in in the shared one.
  const visitor = await openBrowser();
  const page = await visitor.context.newPage();
  await page.goto(`${baseUrl}/exams`);
  await page.getByRole('heading', { name: 'Mock exams' }).waitFor();
  await page.waitForLoadState('networkidle');
  await page.locator('.exam-card', { hasText: 'CKAD mock exam (free)' }).getByText('Sign in to start this exam.').waitFor();
  await page.getByText('Sign in to take an exam and see your results here.').waitFor();
  assert.equal(await page.locator('[role="alert"]').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Start this exam' }).count(), 0);
  assert.deepEqual(visitor.problems.filter((p) => !expectedProblems(p)), []);
  await visitor.close();
});
