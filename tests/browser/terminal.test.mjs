// The terminal in Chromium: a learner with a started session (a real `lite` cluster and terminal
// container) opens the practice page, types into xterm.js and reads the cluster's answer; when the
// session stops, the page says so.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { artefacts, baseUrl, expectedProblems, openBrowser, sessionStarted, signUp, waitForServer } from './browser.mjs';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

/** The text xterm.js shows (its DOM renderer's rows). */
const screenText = (page) => page.locator('.xterm-rows').innerText();

test('a learner types kubectl into the terminal and reads the node back', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${baseUrl}/signup`);
  await page.waitForLoadState('networkidle');
  await signUp(page, `terminal${Date.now()}@example.com`, 'Ada');
  const started = await page.evaluate(async () => {
    const response = await fetch('/api/session/start', { method: 'POST' });
    await response.text(); // read, or leaving the page counts the request as aborted
    for (let i = 0; i < 240; i += 1) {
      const status = await (await fetch('/api/session/status')).json();
      if (status.status !== 'provisioning') return status.status;
      await new Promise((r) => setTimeout(r, 250));
    }
    return 'still provisioning';
  });
  assert.equal(started, 'started');

  await page.goto(`${baseUrl}/practice`);
  const status = page.locator('[data-terminal-status]');
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 20_000 });
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('ckad@ckad'));
  assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea')), true,
    'the terminal has the focus');

  await page.keyboard.type('k get nodes\n');
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('node01'), null, { timeout: 15_000 });
  assert.match(await screenText(page), /node01\s+Ready/);
  await page.screenshot({ path: `${artefacts}/terminal.png` });

  // The terminal follows the window: a narrower page gives the shell fewer columns.
  await page.keyboard.type('clear; stty size\n');
  const size = /^(\d+) (\d+)$/m;
  await page.waitForFunction((source) => new RegExp(source, 'm').test(document.querySelector('.xterm-rows')?.innerText ?? ''), size.source);
  const wide = (await screenText(page)).match(size).slice(1).map(Number);
  await page.setViewportSize({ width: 1120, height: 700 }); // narrower, still beside the tasks
  await page.waitForTimeout(800); // the fit addon, then tmux's own resize timer
  await page.keyboard.type('clear; stty size\n');
  await page.waitForFunction(([source, cols]) => {
    const m = (document.querySelector('.xterm-rows')?.innerText ?? '').match(new RegExp(source, 'm'));
    return m && Number(m[2]) < cols;
  }, [size.source, wide[1]]);
  await page.screenshot({ path: `${artefacts}/terminal-narrow.png` });

  const stopped = await page.evaluate(async () => (await fetch('/api/session/stop', { method: 'POST' })).status);
  assert.equal(stopped, 204);
  await page.locator('.terminal-status[data-state="ended"]').waitFor();
  assert.equal(await status.innerText(), 'The session has ended.');
  assert.deepEqual(browser.problems.filter((p) => !expectedProblems(p)), []);
  await page.close();
});

test('a second terminal tab is a shell of its own, each tab keeps its screen, and every tab hears the end', async () => {
  const page = await browser.context.newPage();
  page.setDefaultTimeout(60_000);
  // The page's sockets, so that the test can make them miss what the server says before closing.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.terminalSockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.terminalSockets.push(this);
      }
    };
  });
  await page.goto(`${baseUrl}/signup`);
  await page.waitForLoadState('networkidle');
  await signUp(page, `tabs${Date.now()}@example.com`, 'Ada');
  const status = await page.evaluate(async () => {
    const response = await fetch('/api/session/start', { method: 'POST' });
    await response.text();
    return response.status;
  });
  assert.equal(status, 202);
  await sessionStarted(page);

  await page.goto(`${baseUrl}/practice`);
  const first = page.locator('.terminal[data-tab="1"] .xterm-rows');
  const second = page.locator('.terminal[data-tab="2"] .xterm-rows');
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('.terminal[data-tab="1"] .xterm-rows')?.innerText.includes('ckad@ckad'));
  await page.keyboard.type('echo "first-$((3*4))"\n');
  await first.getByText('first-12').waitFor();

  await page.getByRole('button', { name: 'Open another terminal' }).click();
  assert.equal(await page.getByRole('tab', { name: 'Terminal 2' }).getAttribute('aria-selected'), 'true');
  await page.locator('.terminal[data-tab="2"][data-state="connected"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('.terminal[data-tab="2"] .xterm-rows')?.innerText.includes('ckad@ckad'));
  // A shell of its own: a new screen, and its own process beside the first tab's shell.
  assert.doesNotMatch(await second.innerText(), /first-12/);
  await page.keyboard.type('echo "second-$((5*6))"; tty\n');
  await second.getByText('second-30').waitFor();
  await page.waitForFunction(() => /\/dev\/pts\/\d+/.test(document.querySelector('.terminal[data-tab="2"] .xterm-rows')?.innerText ?? ''));
  const screen2 = await second.innerText();
  await page.screenshot({ path: `${artefacts}/terminal-tab2.png` });

  // Back to the first: its screen is as it was, and its shell is another TTY.
  await page.getByRole('tab', { name: 'Terminal 1' }).click();
  await first.getByText('first-12').waitFor();
  assert.doesNotMatch(await first.innerText(), /second-30/);
  await page.keyboard.type('tty\n');
  await page.waitForFunction(() => (document.querySelector('.terminal[data-tab="1"] .xterm-rows')?.innerText.match(/\/dev\/pts\/\d+/g) ?? []).length > 0);
  const tty1 = (await first.innerText()).match(/\/dev\/pts\/\d+/)[0];
  const tty2 = screen2.match(/\/dev\/pts\/\d+/)[0];
  assert.notEqual(tty1, tty2);

  // At most three tabs.
  await page.getByRole('button', { name: 'Open another terminal' }).click();
  assert.equal(await page.getByRole('button', { name: 'Open another terminal' }).isDisabled(), true);
  await page.locator('.terminal[data-tab="3"][data-state="connected"]').waitFor({ timeout: 30_000 });

  // Every tab's socket closes before it hears why (as when a tab behind loses its socket while
  // the session ends): each must ask again, learn the session is gone (410, then 404 for a
  // ticket) and say what the front tab says when it hears the end, then stop asking.
  await page.evaluate(() => {
    for (const socket of window.terminalSockets.filter((s) => s.readyState === WebSocket.OPEN)) {
      const heard = socket.onmessage;
      socket.onmessage = (event) => {
        if (typeof event.data !== 'string' || event.data.includes('"pong"')) heard.call(socket, event);
      };
    }
  });
  const before = browser.problems.length;
  const stopped = await page.evaluate(async () => (await fetch('/api/session/stop', { method: 'POST' })).status);
  assert.equal(stopped, 204);
  // Tabs behind the front one are on the page, hidden.
  for (const tab of [1, 2, 3]) await page.locator(`.terminal[data-tab="${tab}"][data-state="ended"]`).waitFor({ state: 'attached' });
  for (const tab of [1, 2, 3]) {
    await page.getByRole('tab', { name: `Terminal ${tab}` }).click();
    assert.equal(await page.locator('[data-terminal-status]').innerText(), 'The session has ended.', `tab ${tab}`);
  }
  assert.equal(await page.getByRole('button', { name: 'Open another terminal' }).isDisabled(), true);
  const sockets = await page.evaluate(() => window.terminalSockets.length);
  await page.waitForTimeout(3_000); // longer than the first waits before asking again
  assert.equal(await page.evaluate(() => window.terminalSockets.length), sockets, 'no tab asks again');
  // Asking again finds the session gone; a reconnect under way when another tab learned the end
  // is dropped.
  const gone = (p) => / 410$|status of 404 \(Not Found\)|closed before the connection is established/.test(p);
  assert.deepEqual(browser.problems.slice(0, before).filter((p) => !expectedProblems(p)), []);
  assert.deepEqual(browser.problems.slice(before).filter((p) => !expectedProblems(p) && !gone(p)), []);
  await page.screenshot({ path: `${artefacts}/terminal-tabs-ended.png` });
  await page.close();
});
