// The start page in a real browser: rendered by the server, then hydrated by the wasm bundle
// under the strict Content-Security-Policy.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { artefacts, baseUrl, openBrowser, waitForServer } from './browser.mjs';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

test('the start page hydrates and its curriculum opens on click', async () => {
  const page = await browser.context.newPage();
  const response = await page.goto(baseUrl);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-security-policy'], /script-src 'self' 'wasm-unsafe-eval' 'nonce-/);
  await page.getByRole('heading', { name: 'Practise for the CKAD on a real cluster' }).waitFor();

  // The wasm bundle has taken over once the effect it runs has marked the section.
  await page.locator('.curriculum[data-hydrated="true"]').waitFor({ timeout: 30_000 });

  const domain = page.getByRole('button', { name: /Services and Networking/ });
  assert.equal(await domain.getAttribute('aria-expanded'), 'false');
  await domain.click();
  await page.getByText('Service types, NetworkPolicy, Ingress.').waitFor();
  assert.equal(await domain.getAttribute('aria-expanded'), 'true');
  await domain.click();
  await page.getByText('Service types, NetworkPolicy, Ingress.').waitFor({ state: 'detached' });

  // The stylesheet applied: the page is not unstyled browser defaults.
  const font = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
  assert.doesNotMatch(font, /^"?Times/);

  await page.screenshot({ path: `${artefacts}/home.png`, fullPage: true });
  assert.deepEqual(browser.problems, []);
});

test('an unknown address shows the not-found page with a way back', async () => {
  const page = await browser.context.newPage();
  const response = await page.goto(`${baseUrl}/no/such/page`);
  assert.equal(response.status(), 404);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await page.getByRole('link', { name: 'Back to the start page' }).click();
  await page.getByRole('heading', { name: 'Practise for the CKAD on a real cluster' }).waitFor();
});
