// A learner's whole session in Chromium, on a real `lite` cluster and terminal container: Start on
// the dashboard with its progress, the practice page with a task's text, Check failing then passing
// after kubectl typed into the terminal, the countdown, Extend, the divider, a tablet-sized window,
// and Stop with its confirmation.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { artefacts, baseUrl, expectedProblems, openBrowser, signUp, waitForServer } from './browser.mjs';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

const screenText = (page) => page.locator('.xterm-rows').innerText();
const countdownMinutes = async (page) => Number((await page.locator('.countdown-value').innerText()).split(':')[0]);

test('a learner starts from the dashboard, checks a task before and after doing it, extends and stops', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${baseUrl}/signup`);
  await page.waitForLoadState('networkidle');
  await signUp(page, `practice${Date.now()}@example.com`, 'Lin');

  // The start page sends a signed-in learner to the dashboard.
  await page.goto(baseUrl);
  await page.getByRole('link', { name: 'Go to your dashboard' }).click();
  await page.getByRole('heading', { name: 'Your practice' }).waitFor();
  await page.getByText('None yet.').waitFor();
  // Enabled once the page is hydrated and the server is listening for this learner's session.
  await page.locator('button:not([disabled])', { hasText: 'Start a session' }).waitFor();
  await page.screenshot({ path: `${artefacts}/dashboard.png` });

  // Start: each step shows as it happens (pictured when it does), then the practice page opens.
  // A warm pool member (the run command's default) is ready in well under a second, so its steps
  // may pass unseen.
  await page.getByRole('button', { name: 'Start a session' }).click();
  page.locator('.start-step[data-step="cluster"][data-state="running"]').waitFor({ timeout: 90_000 })
    .then(() => page.screenshot({ path: `${artefacts}/dashboard-starting.png` }))
    .catch(() => {});
  await page.waitForURL(`${baseUrl}/practice`, { timeout: 90_000 });

  // The terminal connects and has the focus.
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 20_000 });
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('ckad@ckad'));
  assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea')), true,
    'the terminal has the focus');

  // The countdown runs from the server's expiry: an hour, not yet urgent.
  const countdown = page.locator('.countdown');
  assert.equal(await countdown.getAttribute('data-urgency'), 'ok');
  assert.ok([59, 60].includes(await countdownMinutes(page)), 'about an hour is left');
  const first = await page.locator('.countdown-value').innerText();
  await page.waitForFunction((first) => document.querySelector('.countdown-value')?.innerText !== first, first);

  // A task's text.
  await page.getByRole('button', { name: /Run a labelled pod/ }).click();
  await page.getByRole('heading', { name: 'Run a labelled pod' }).waitFor();
  const text = page.locator('.markdown').first();
  await text.getByText('In the namespace web, run a pod named front').waitFor();
  assert.equal(await text.locator('code', { hasText: 'nginx:1.27' }).count(), 1, 'Markdown is rendered');
  // Practice shows the task's hint, folded until the learner asks for it.
  const hint = page.locator('details.task-hint');
  assert.equal(await hint.count(), 1);
  assert.equal(await hint.locator('code', { hasText: '--labels' }).isVisible(), false, 'folded');
  await hint.getByText('Hint', { exact: true }).click();
  await hint.locator('code', { hasText: '--labels' }).waitFor();

  // Check before doing it: every check fails, each with its reason.
  const check = page.getByRole('button', { name: 'Check', exact: true });
  await check.click();
  await page.locator('.check-summary', { hasText: '0 of 4 checks pass' }).waitFor();
  const reasons = await page.locator('.check-result[data-passed="false"] .check-reason').allInnerTexts();
  assert.equal(reasons.length, 4);
  assert.match(reasons[0], /Pod web\/front does not exist/);
  await page.screenshot({ path: `${artefacts}/practice-check-failing.png` });

  // Do it in the terminal, then Check again until the pod is Ready.
  await page.locator('[data-terminal]').click();
  await page.keyboard.type('kubectl run front -n web --image=nginx:1.27 --labels=app=front,tier=web --port=80\n');
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('pod/front created'), null, { timeout: 15_000 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    // One Check per task every five seconds is what the platform allows.
    await page.waitForTimeout(5_000);
    await check.click();
    await page.waitForFunction(() => document.querySelector('.check-panel button')?.innerText === 'Check');
    if (await page.locator('.check-summary', { hasText: '4 of 4 checks pass' }).count()) break;
    assert.ok(Date.now() < deadline, `the checks did not pass: ${await page.locator('.check-results').innerText()}`);
  }
  assert.equal(await page.locator('.check-result[data-passed="true"]').count(), 4);
  assert.match(await screenText(page), /pod\/front created/);
  await page.screenshot({ path: `${artefacts}/practice-check-passing.png` });

  // Extend once: 30 more minutes, and the button says it is used.
  await page.getByRole('button', { name: 'Extend +30 min' }).click();
  const extended = page.getByRole('button', { name: 'Extended' });
  await extended.waitFor();
  assert.equal(await extended.isDisabled(), true);
  assert.ok(await countdownMinutes(page) >= 89, 'the countdown gained 30 minutes');

  // The divider moves with the keyboard.
  const divider = page.getByRole('separator', { name: 'Resize the task panel' });
  assert.equal(await divider.getAttribute('aria-orientation'), 'vertical');
  const before = Number(await divider.getAttribute('aria-valuenow'));
  await divider.focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.equal(Number(await divider.getAttribute('aria-valuenow')), before + 4);
  const tasksBox = await page.locator('.task-pane').boundingBox();
  const terminalBox = await page.locator('.terminal-pane').boundingBox();
  assert.ok(tasksBox.x + tasksBox.width <= terminalBox.x, 'the tasks are beside the terminal');
  await page.screenshot({ path: `${artefacts}/practice-1280x800.png` });

  // On a tablet the tasks sit above the terminal.
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.waitForFunction(() => document.querySelector('[role="separator"]')?.getAttribute('aria-orientation') === 'horizontal');
  const tabletTasks = await page.locator('.task-pane').boundingBox();
  const tabletTerminal = await page.locator('.terminal-pane').boundingBox();
  assert.ok(tabletTasks.y + tabletTasks.height <= tabletTerminal.y, 'the tasks are above the terminal');
  assert.ok(tabletTerminal.height > 250, 'the terminal keeps room to work');
  await page.screenshot({ path: `${artefacts}/practice-1024x768.png` });
  await page.setViewportSize({ width: 1280, height: 800 });

  // Stop asks first; keeping on working changes nothing.
  await page.getByRole('button', { name: 'Stop session' }).click();
  const dialog = page.getByRole('dialog', { name: 'Stop the session?' });
  await dialog.waitFor();
  await page.screenshot({ path: `${artefacts}/practice-stop-dialog.png` });
  await dialog.getByRole('button', { name: 'Keep working' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Stop session' }).click();
  await dialog.getByRole('button', { name: 'Stop session' }).click();
  await page.locator('.session-over', { hasText: 'Stopping the session' }).waitFor();
  await page.locator('.session-over', { hasText: 'Back to the dashboard' }).waitFor({ timeout: 60_000 });
  await page.locator('.terminal-status[data-state="ended"]').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Stop session' }).isDisabled(), true);
  await page.screenshot({ path: `${artefacts}/practice-ended.png` });

  // The dashboard lists it among the past sessions.
  await page.getByRole('link', { name: 'Back to the dashboard' }).click();
  await page.getByRole('button', { name: 'Start a session' }).waitFor();
  await page.locator('.sessions-table tr[data-status="ended"]', { hasText: 'Stopped' }).waitFor();
  await page.screenshot({ path: `${artefacts}/dashboard-after.png` });
  assert.deepEqual(browser.problems.filter((p) => !expectedProblems(p)), []);
  await page.close();
});
