// Shared set-up for browser tests: Debian's Chromium driven by playwright-core, a fresh profile
// per test, and the address of the server under test.
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const baseUrl = `http://${process.env.LEPTOS_SITE_ADDR ?? '127.0.0.1:3000'}`;
export const artefacts = process.env.TEST_ARTEFACTS ?? 'test-results';

// Only loopback traffic: no background fetches, no component updates.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Polls until the server answers, since cargo-leptos starts tests right after spawning it. */
export async function waitForServer(timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`${baseUrl} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits until the wasm bundle has loaded, so buttons and forms are driven by the app. */
export async function hydrated(page) {
  await page.waitForFunction(() => performance.getEntriesByType('resource').some((r) => r.name.endsWith('.wasm')));
  await page.waitForLoadState('networkidle');
}

/** The mails to `email` in the SMTP server's mailbox ($MAILBOX, by scripts/test.sh), oldest first. */
export function mailsTo(email) {
  let mails = [];
  try {
    mails = readFileSync(process.env.MAILBOX, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch { /* no mail yet */ }
  return mails.filter((m) => m.to[0] === email.toLowerCase());
}

/**
 * The code in the newest mail to `email`, once there are more than `seen` of them (pass how many
 * there were before asking, or an earlier code is read before the new mail arrives).
 */
export async function mailedCode(email, seen = 0, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mails = mailsTo(email);
    if (mails.length > seen) return mails.at(-1).data.match(/Your sign-in code is (\d{6})/)[1];
    if (Date.now() > deadline) throw new Error(`no new code was mailed to ${email}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Signs the page's browser up as a learner (the cookies stay in its context): registers, then
 * proves the email with the mailed code, which sets the password. An existing account gets the
 * password anew the same way.
 */
export async function signUp(page, email, name = 'Learner') {
  const post = (path, body) => page.evaluate(async ([path, body]) => {
    const response = await fetch(path, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    await response.text(); // read, or leaving the page counts the request as aborted
    return response.status;
  }, [path, body]);
  const account = { email, password: 'correct horse battery', name };
  const seen = mailsTo(email).length;
  const registered = await post('/api/auth/register', account);
  if (registered !== 202) throw new Error(`registering ${email} answered ${registered}`);
  const proven = await post('/api/auth/password', { ...account, code: await mailedCode(email, seen) });
  if (proven !== 200) throw new Error(`proving ${email} answered ${proven}`);
}

/**
 * Polls the JSON API until the page's user has a started session; returns it. The poll is the
 * test's request, not the page's: one that fails in the network is logged with the browser's
 * reason and kept out of the page's problems, and polled again (three failures in a row fail).
 */
export async function sessionStarted(page, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  let session = null;
  for (let failures = 0; ;) {
    const polled = await page.evaluate(async () => {
      try {
        const response = await fetch('/api/session/status');
        return { session: response.ok ? await response.json() : null };
      } catch (error) {
        return { error: String(error) };
      }
    });
    if (polled.error) {
      failures += 1;
      const reason = await pollFailure(page);
      console.warn(`polling /api/session/status failed (${polled.error}; the browser says: ${reason})`);
      if (failures === 3) throw new Error(`polling the session failed three times in a row: ${reason}`);
    } else {
      failures = 0;
      session = polled.session;
      if (session?.status === 'started') return session;
    }
    if (Date.now() > deadline) throw new Error(`no started session: ${JSON.stringify(session)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The browsers' problems, by context. */
const problemsOf = new WeakMap();

/** The network reason of the failed poll, taken out of the page's problems. */
async function pollFailure(page) {
  await new Promise((r) => setTimeout(r, 200)); // the failure's event may follow the rejection
  const problems = problemsOf.get(page.context()) ?? [];
  const at = problems.findLastIndex((p) => p.startsWith('request failed:') && p.includes('/api/session/status '));
  return at < 0 ? 'no failed request seen' : problems.splice(at, 1)[0];
}

/** Problems every page that follows its session has: leaving it aborts its event stream. */
export const expectedProblems = (problem) => problem.includes('/api/session/events net::ERR_ABORTED');

/** A browser with a fresh profile; `problems` collects console errors and failed requests. */
export async function openBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'ckad-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  const problems = [];
  context.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  context.on('weberror', (e) => problems.push(`page error: ${e.error().message}`));
  context.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  problemsOf.set(context, problems);
  mkdirSync(artefacts, { recursive: true });
  return {
    context,
    problems,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
