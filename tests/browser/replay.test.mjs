// The replay in Chromium: a learner types in the practice terminal, switches task and presses
// Check, ends the session, then opens its replay from the session history: asciinema-player shows
// the first frame (the prompt and the command typed) and the task switches and Checks as
// chapters, the first task's among them (chosen before the terminal's socket opened), in colours
// that read on its dark background; a chapter jumped to shows its screen whole. Another learner
// cannot fetch the recording.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { artefacts, baseUrl, expectedProblems, hydrated, openBrowser, sessionStarted, signUp, waitForServer } from './browser.mjs';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

test('a learner watches their session again from the history, with chapters; nobody else can', async () => {
  const page = await browser.context.newPage();
  // A session, a terminal and a player on two shared cores: pages may take a while to load.
  page.setDefaultTimeout(60_000);
  page.setDefaultNavigationTimeout(90_000);
  await page.goto(`${baseUrl}/signup`);
  await page.waitForLoadState('networkidle');
  await signUp(page, `replay${Date.now()}@example.com`, 'Ada');
  const status = await page.evaluate(async () => {
    const response = await fetch('/api/session/start', { method: 'POST' });
    await response.text();
    return response.status;
  });
  assert.equal(status, 202);
  const session = await sessionStarted(page);

  await page.goto(`${baseUrl}/practice`);
  const firstTitle = (await page.locator('.task-item').first().locator('.task-name').innerText()).trim();
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('ckad@ckad'));
  await page.keyboard.type('echo "replayed-$((6*7))"\n');
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('replayed-42'));
  // A task switch and a Check: two chapters.
  const second = page.locator('.task-item').nth(1);
  const secondTitle = (await second.locator('.task-name').innerText()).trim();
  await second.click();
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  await page.locator('.check-summary').waitFor({ timeout: 30_000 });

  const stopped = await page.evaluate(async () => (await fetch('/api/session/stop', { method: 'POST' })).status);
  assert.equal(stopped, 204);

  await page.goto(`${baseUrl}/dashboard`);
  await hydrated(page);
  await page.locator(`a[href="/replay/${session.id}"]`).click();
  await page.locator('[data-replay][data-state="ready"]').waitFor({ timeout: 20_000 });
  // The first frame: the prompt as the learner first saw it.
  await page.waitForFunction(() => document.querySelector('.ap-term')?.innerText.includes('ckad@ckad'), null, { timeout: 30_000 });
  // The prompt's bold colours (user@host green, the folder blue) read clearly on the player's dark
  // background: a contrast of at least 4.5, WCAG's AA for text.
  const contrasts = await page.evaluate(() => {
    const luminance = (color) => {
      const [r, g, b] = color.match(/[\d.]+/g).slice(0, 3).map((c) => {
        const v = Number(c) / 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const background = luminance(getComputedStyle(document.querySelector('.ap-player')).backgroundColor);
    return [...document.querySelectorAll('.ap-term .ap-line span')]
      .filter((span) => ['ckad@ckad', '~'].includes(span.textContent.trim()))
      .map((span) => {
        const text = luminance(getComputedStyle(span).color);
        const ratio = (Math.max(text, background) + 0.05) / (Math.min(text, background) + 0.05);
        return [span.textContent.trim(), Math.round(ratio * 10) / 10];
      });
  });
  assert.deepEqual([...new Set(contrasts.map(([text]) => text))].sort(), ['ckad@ckad', '~'], JSON.stringify(contrasts));
  // Our theme: the live terminal's background, not the player's black.
  assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector('.ap-player')).backgroundColor), 'rgb(15, 23, 42)');
  for (const [text, ratio] of contrasts) assert.ok(ratio >= 4.5, `${text} has a contrast of ${ratio}: ${JSON.stringify(contrasts)}`);
  const chapters = await page.locator('.chapter').allInnerTexts();
  assert.equal(chapters[0], `Task: ${firstTitle}`, JSON.stringify(chapters));
  assert.ok(chapters.includes(`Task: ${secondTitle}`), JSON.stringify(chapters));
  assert.ok(chapters.includes(`Check: ${secondTitle}`), JSON.stringify(chapters));
  await page.screenshot({ path: `${artefacts}/replay.png` });

  // Jumping to the second task's chapter shows that moment's screen whole: the prompt with the
  // command after it, not the cells the first frame had drawn left blank.
  await page.locator('.chapter', { hasText: `Task: ${secondTitle}` }).click();
  // The player draws each colour run as an element of its own, read as lines by innerText.
  await page.waitForFunction(
    () => /ckad@ckad[\s:~]*\$\s+echo "replayed-/.test(document.querySelector('.ap-term')?.innerText ?? ''),
    null, { timeout: 20_000 },
  ).catch(async (error) => {
    throw new Error(`${error.message}; the player shows: ${JSON.stringify(await page.locator('.ap-term').innerText())}`);
  });
  await page.screenshot({ path: `${artefacts}/replay-chapter.png` });

  assert.deepEqual(browser.problems.filter((p) => !expectedProblems(p)), []);
  await page.close();

  // Another learner hears there is no such recording.
  const other = await openBrowser();
  try {
    const stranger = await other.context.newPage();
    stranger.setDefaultTimeout(60_000);
    stranger.setDefaultNavigationTimeout(90_000);
    await stranger.goto(`${baseUrl}/signup`);
    await stranger.waitForLoadState('networkidle');
    await signUp(stranger, `stranger${Date.now()}@example.com`, 'Bob');
    const answer = await stranger.evaluate(async (id) => (await fetch(`/api/replays/${id}`)).status, session.id);
    assert.equal(answer, 404);
    await stranger.goto(`${baseUrl}/replay/${session.id}`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await stranger.locator('[data-replay][data-state="missing"]').waitFor({ timeout: 60_000 });
    await stranger.getByText('There is no recording of this session.').waitFor();
  } finally {
    await other.close();
  }
});
