// Shared set-up for browser tests: Debian's Chromium driven by playwright-core, a fresh profile
// per test, and the address of the server under test.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
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
