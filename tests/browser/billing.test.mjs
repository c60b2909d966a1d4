// Passes and payments in Chromium, against stripe-mock (scripts/test.sh starts it and gives the
// server STRIPE_API_BASE and the secrets): pricing → checkout (the browser is sent to the URL
// stripe-mock answered; Stripe's hosted page itself is never reached: the test answers for it) →
// the webhook, signed as Stripe signs → the success page shows the pass → Activate on the
// dashboard → a full exam starts. A learner without a pass is refused.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  artefacts, baseUrl, expectedProblems, hydrated, openBrowser, sessionStarted, signUp, waitForServer,
} from './browser.mjs';

let browser;
before(async () => {
  await waitForServer();
  browser = await openBrowser();
});
after(() => browser?.close());

/** Delivers `event` to the webhook as Stripe does: signed over `t.body` with the endpoint's secret. */
async function deliver(event) {
  const body = JSON.stringify(event);
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', process.env.STRIPE_WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex');
  const response = await fetch(`${baseUrl}/api/v1/billing/webhook`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` }, body,
  });
  return { status: response.status, body: await response.json() };
}

test('a learner buys a pass, activates it and starts a full exam', async () => {
  // Stripe's hosted page is answered here: no request leaves the machine.
  let hostedPage = null;
  await browser.context.route('https://checkout.stripe.com/**', (route) => {
    hostedPage = route.request().url();
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Stripe Checkout (test stand-in)</h1>' });
  });
  const page = await browser.context.newPage();
  await page.goto(`${baseUrl}/signup`);
  await signUp(page, `buyer${Date.now()}@example.com`, 'Buyer');

  await page.goto(`${baseUrl}/pricing`);
  await page.getByRole('heading', { name: 'Pricing' }).waitFor();
  await hydrated(page);
  const plans = page.locator('.plan-card');
  assert.equal(await plans.count(), 4);
  await page.locator('.plan-card[data-plan="pass-1w"]').getByText('$19.99').waitFor();
  assert.equal(await page.locator('.plan-card[data-plan="free-trial"] button').count(), 0, 'the free trial is not sold');
  await page.screenshot({ path: `${artefacts}/pricing.png` });
  // The server's answer is read on its way to the page (the page leaves at once).
  let checkout = null;
  await page.route('**/api/pages/start_checkout*', async (route) => {
    const response = await route.fetch();
    checkout = await response.json();
    await route.fulfill({ response });
  });
  await page.getByRole('button', { name: 'Buy the 38 Hours Pass' }).click();
  await page.waitForURL(/^https:\/\/checkout\.stripe\.com\//);
  assert.match(checkout.id, /^cs_test_/);
  assert.match(checkout.url, /^https:\/\/checkout\.stripe\.com\//);
  assert.equal(page.url(), checkout.url);
  assert.equal(hostedPage, checkout.url, 'the browser went to the URL stripe-mock answered');

  // Back from Stripe before its webhook: the success page waits, then shows the pass.
  await page.goto(`${baseUrl}/payment/success?session_id=${checkout.id}`);
  await page.getByText('Waiting for the payment to be confirmed').waitFor();
  await hydrated(page);
  const me = await (await browser.context.request.get(`${baseUrl}/api/auth/me`)).json();
  const delivered = await deliver({
    id: `evt_${Date.now()}`, object: 'event', type: 'checkout.session.completed',
    data: { object: {
      id: checkout.id, object: 'checkout.session', mode: 'payment', payment_status: 'paid',
      payment_intent: `pi_${Date.now()}`, client_reference_id: me.id,
      metadata: { user_id: me.id, pass_type: 'pass-38h' },
    } },
  });
  assert.deepEqual(delivered, { status: 200, body: { received: true, duplicate: false } });
  await page.getByText('Your 38 Hours Pass is ready.').waitFor({ timeout: 15_000 });
  await page.screenshot({ path: `${artefacts}/payment-success.png` });

  // The dashboard: the pass waits for Activate, then counts down.
  await page.getByRole('link', { name: 'Go to the dashboard' }).click();
  await page.waitForURL(`${baseUrl}/dashboard`);
  // Hydrated and following the session (its event stream never lets the network go idle).
  await page.locator('button:has-text("Start a session"):enabled').waitFor();
  const access = page.locator('.access-card');
  await access.getByText('38 Hours Pass (38 hours), not yet activated').waitFor();
  await access.getByRole('button', { name: 'Activate' }).click();
  await access.locator('[data-access="active"]').waitFor();
  assert.match(await access.locator('.pass-left').innerText(), /^3[78] h \d+ min left$/);
  await page.screenshot({ path: `${artefacts}/dashboard-access.png` });

  // The full exam now starts.
  await page.goto(`${baseUrl}/exams`);
  await hydrated(page);
  const full = page.locator('.exam-card', { hasText: 'CKAD full mock exam' });
  await full.getByRole('button', { name: 'Start this exam' }).click();
  await page.waitForURL(`${baseUrl}/practice`);
  const session = await sessionStarted(page, 240_000); // 16 tasks set up on a busy machine
  assert.equal(session.exam, 'ckad-mock-full');
  await page.locator('.terminal-status[data-state="connected"]').waitFor({ timeout: 30_000 });
  // Stopped from another page: the practice page's terminal would try to reconnect.
  await page.goto(`${baseUrl}/pricing`);
  const stopped = await page.evaluate(async () => {
    const response = await fetch('/api/session/stop', { method: 'POST' });
    await response.text();
    return response.status;
  });
  assert.equal(stopped, 204);
  await browser.context.unroute('https://checkout.stripe.com/**');
  assert.deepEqual(browser.problems.filter((p) => !expectedProblems(p)), []);
  await page.close();
});

test('a learner without a pass is refused the full exam', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${baseUrl}/signup`);
  await signUp(page, `nopass${Date.now()}@example.com`, 'No Pass');
  await page.goto(`${baseUrl}/dashboard`);
  await page.locator('.access-card [data-access="none"]').waitFor();
  await page.goto(`${baseUrl}/exams`);
  await hydrated(page);
  const full = page.locator('.exam-card', { hasText: 'CKAD full mock exam' });
  await full.getByText('Needs an access pass.').waitFor();
  assert.equal(await full.getByRole('button').count(), 0);
  // The server refuses whatever the page shows.
  const refused = await page.evaluate(async () => {
    const response = await fetch('/api/exams/ckad-mock-full/start', { method: 'POST' });
    return { status: response.status, body: await response.json() };
  });
  assert.deepEqual(refused, { status: 403, body: { error: 'this exam needs an access pass' } });
  await page.close();
});
