// Usage: node pages.mjs BASE_URL EMPLOYER_TOKEN PATIENT_TOKEN OUT_DIR
// Logs in on /employer and /patient as a person would (type the token, click), prints JSON with what
// each page shows, and saves screenshots. Exit 1 on any page error.
import { chromium } from "playwright-core";

const [base, employerToken, patientToken, outDir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"],
});
const result = { errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 1100 } });
  page.on("console", (m) => { if (m.type() === "error") result.errors.push(m.text()); });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  for (const [kind, token] of [["employer", employerToken], ["patient", patientToken]]) {
    await page.goto(`${base}/${kind}`);
    await page.fill("#token", token);
    await page.click("button[type=submit]");
    await page.waitForSelector("article.ezla", { timeout: 10000 });
    await page.screenshot({ path: `${outDir}/${kind}.png` });
    result[kind] = {
      cards: await page.locator("article.ezla").count(),
      cancelled: await page.locator("article.ezla.cancelled").count(),
      text: await page.textContent("#list"),
    };
  }
  await page.emulateMedia({ media: "print" });
  result.printHidesForm = !(await page.isVisible("#login"));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.errors.length ? 1 : 0);
