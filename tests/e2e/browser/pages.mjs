// Usage: node pages.mjs BASE_URL EMPLOYER_TOKEN PATIENT_TOKEN OPERATOR_TOKEN DOCTOR_TOKEN OUT_DIR
// Uses the pages as people would (type the token, click, filter, acknowledge, download, sign out,
// check a printout), checks each main page at 360 px and with axe-core (WCAG 2.1 A/AA), saves a
// screenshot of each, and prints JSON with what it saw. Exit 1 on any page error.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, employerToken, patientToken, operatorToken, doctorToken, outDir] = process.argv.slice(2);
const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"],
});
const result = { errors: [], axe: {}, narrow: {}, smallTargets: {} };

async function newPage(context) {
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") result.errors.push(m.text()); });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  return page;
}

async function signIn(page, token) {
  await page.goto(`${base}/web/sign-in`);
  await page.fill("#token", token);
  await Promise.all([page.waitForNavigation(), page.click("main button[type=submit]")]);
}

const numbers = (page) => page.$$eval("article.ezla h2 a", (as) => as.map((a) => a.textContent.trim().replace(/\s+/g, " ")));

// Each main page: serious or critical axe findings, overflow at 360 px, touch targets under 44 px.
async function check(page, name) {
  await page.screenshot({ path: `${outDir}/${name}.png`, fullPage: true });
  await page.evaluate(axeSource);  // evaluated by the driver, not injected as a script: the CSP stays on
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
    return r.violations.filter((v) => ["serious", "critical"].includes(v.impact)).map((v) => `${v.id}: ${v.nodes.length}`);
  });
  result.axe[name] = found;
  const size = page.viewportSize();
  await page.setViewportSize({ width: 360, height: 800 });
  result.narrow[name] = await page.evaluate(() => document.documentElement.scrollWidth);
  result.smallTargets[name] = await page.$$eval("button, a.button, input:not([type=hidden]), select", (els) =>
    els.filter((e) => e.offsetParent !== null && e.type !== "checkbox" && e.getBoundingClientRect().height < 44)
       .map((e) => e.outerHTML.slice(0, 80)));
  await page.setViewportSize(size);
}

try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 1100 }, acceptDownloads: true });
  const page = await newPage(context);

  // A payroll clerk.
  await signIn(page, employerToken);
  result.employerUrl = page.url();
  const first = await numbers(page);
  await check(page, "employer");
  await Promise.all([page.waitForNavigation(), page.click("a[rel=next]")]);
  const second = await numbers(page);
  result.employer = { first: first.length, all: [...first, ...second], text: await page.textContent("main") };
  await page.goto(`${base}/web/employer`);
  await page.selectOption("#f-status", "cancelled");
  await Promise.all([page.waitForNavigation(), page.click("#filter-form button[type=submit]")]);
  result.employer.cancelled = await numbers(page);
  await page.goto(`${base}/web/employer`);
  const before = await page.textContent("p.summary");
  await Promise.all([page.waitForNavigation(), page.click("article.ezla form button")]);
  result.employer.newBefore = before.trim();
  result.employer.newAfter = (await page.textContent("p.summary")).trim();
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("a[href^='/web/employer/export.csv']")]);
  result.employer.csvLines = readFileSync(await download.path(), "utf8").trim().split("\r\n").length;
  await Promise.all([page.waitForNavigation(), page.click("article.ezla h2 a")]);
  result.detail = { text: await page.textContent("main"), code: (await page.textContent("dd code")).trim() };
  const verifyHref = await page.getAttribute("a[href^='/verify']", "href");
  await check(page, "detail");
  await Promise.all([page.waitForNavigation(), page.click("header form button")]);
  result.afterSignOut = page.url();

  // Someone holding the printout, signed in as nobody.
  const stranger = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const paper = await newPage(stranger);
  await paper.goto(`${base}${verifyHref}`);
  result.verify = await paper.textContent("main");
  await check(paper, "verify");
  await paper.goto(`${base}/web/sign-in`);
  await check(paper, "sign-in");

  // A patient.
  await signIn(page, patientToken);
  result.patientUrl = page.url();
  result.patient = { numbers: await numbers(page), text: await page.textContent("main") };
  await check(page, "patient");
  await page.emulateMedia({ media: "print" });
  result.print = {
    title: await page.isVisible("h1"),
    printedLine: await page.isVisible("p.print-only"),
    printedText: (await page.textContent("p.print-only")).trim(),
    formsHidden: !(await page.isVisible("header form")),
  };
  await page.screenshot({ path: `${outDir}/patient-print.png`, fullPage: true });
  await page.emulateMedia({ media: "screen" });

  // An operator, then a doctor.
  await page.goto(`${base}/web/sign-in`);
  await signIn(page, operatorToken);
  result.operatorUrl = page.url();
  result.operator = await page.textContent("main");
  await check(page, "operator");
  await Promise.all([page.waitForNavigation(), page.click("#doctors a")]);
  result.operatorDoctor = await page.textContent("main");
  await check(page, "operator-doctor");
  await page.goto(`${base}/web/sign-in`);
  await signIn(page, doctorToken);
  result.doctorUrl = page.url();
  result.doctor = { text: await page.textContent("main"), cards: await page.locator("article.ezla").count() };
  await check(page, "doctor");
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.errors.length ? 1 : 0);
