// Clicks through `assay view` and a report in headless Chromium and takes screenshots.
//   node view.mjs VIEW_URL REPORT_FILE BASELINE_ID OUT_DIR
// Prints one JSON object of what it saw; exits non-zero on any failure.
import { chromium } from 'playwright-core';

const [url, report, baseline, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const seen = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('.run-check');
  seen.runs_listed = await page.locator('.run-check').count();
  for (const box of await page.locator('.run-check').all()) await box.check();
  await page.locator(`.run-baseline[value="${baseline}"]`).check();
  await page.click('#compare-btn');
  await page.waitForSelector('#comparison-table');
  seen.comparison_text = await page.locator('#comparison-table').innerText();
  seen.charts = await page.locator('#comparison svg').count();
  seen.status = await page.locator('#status').innerText();
  await page.waitForSelector('#doc-table tbody tr.doc');
  seen.tasks = await page.locator('#task-select option').allInnerTexts();
  seen.count_all = await page.locator('#doc-count').innerText();
  await page.check('#disagree-only');
  seen.count_disagree = await page.locator('#doc-count').innerText();
  await page.locator('#doc-table tbody tr.doc').first().click();
  await page.waitForSelector('#doc-table tr.detail');
  seen.detail = await page.locator('#doc-table tr.detail').innerText();
  await page.screenshot({ path: `${out}/view.png`, fullPage: true });
  seen.bad_request = await page.evaluate(async () => {
    const r = await fetch('/api/compare?runs=99999');
    return { status: r.status, body: await r.json() };
  });
  seen.view_errors = errors.splice(0);

  await page.goto('file://' + report);
  await page.waitForSelector('#doc-table tbody tr.doc');
  seen.report_charts = await page.locator('figure svg').count();
  seen.report_rows = await page.locator('#comparison-table tbody tr').count();
  seen.report_provenance = await page.locator('#provenance-table').innerText();
  await page.check('#disagree-only');
  seen.report_count_disagree = await page.locator('#doc-count').innerText();
  await page.screenshot({ path: `${out}/report.png`, fullPage: true });
  seen.report_errors = errors;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
