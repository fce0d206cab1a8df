// The dashboard at scale: 10 000 tenants and 100 000 contacts in one tenant (CDX_E2E_TENANTS,
// CDX_E2E_CONTACTS to change), then the time from a navigation click to the page's data on screen, p95 over
// every page visited (the bar: < 200 ms). Keyset lists never count, so a page costs the same at
// any size.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { adminToken, apiCall, startHarness, superadminToken } from "./harness.mjs";

const TENANTS = Number(process.env.CDX_E2E_TENANTS ?? 10000);
const CONTACTS = Number(process.env.CDX_E2E_CONTACTS ?? 100000);
let h;

before(async () => {
  h = await startHarness();
});
after(async () => h?.stop());

async function pool(n, width, job) {
  let next = 0;
  const run = async () => {
    while (next < n) await job(next++);
  };
  await Promise.all(Array.from({ length: width }, run));
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

test(`${TENANTS} tenants and ${CONTACTS} contacts: every page's data within 200 ms p95`, { timeout: 30 * 60 * 1000 }, async () => {
  const sa = await superadminToken(h);
  let t = Date.now();
  const run = Date.now().toString(36);
  await pool(TENANTS, 8, async (i) => {
    const r = await apiCall(h, "POST", "/api/v1/tenants", { token: sa, body: { name: `Scale ${i}`, slug: `s${run}-${i}`, admin_email: `admin@s${i}.example`, admin_password: "scale-password-1" } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });
  console.log(`# seeded ${TENANTS} tenants in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  t = Date.now();
  const admin = await adminToken(h);
  const lines = ["first_name,last_name,email,lifecycle_stage"];
  for (let i = 0; i < CONTACTS; i++) lines.push(`First${i},Last${i},c${i}@scale.example,${["lead", "qualified", "customer", "churned"][i % 4]}`);
  const imp = await fetch(`${h.apiUrl}/api/v1/crm/contacts/import`, { method: "POST", headers: { Authorization: `Bearer ${admin}`, "Content-Type": "text/csv" }, body: lines.join("\n") });
  const report = await imp.json();
  assert.equal(imp.status, 200, JSON.stringify(report).slice(0, 500));
  assert.equal(report.created, CONTACTS);
  console.log(`# imported ${CONTACTS} contacts in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const timings = {};
  const record = (name, ms) => (timings[name] ??= []).push(ms);
  const context = await h.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("response", (r) => r.status() >= 400 && !r.url().endsWith("/auth/refresh") && problems.push(`${r.status()} ${r.url()}`));
  const shown = async (p) =>
    page.waitForFunction((x) => {
      const m = document.querySelector("main");
      return m && (m.dataset.path ?? "").startsWith(x) && m.querySelector('[data-loaded="true"]') !== null && m.querySelector('[aria-busy="true"]') === null;
    }, p);
  const nav = async (name, p) => {
    const t0 = Date.now();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
    await shown(p);
    record(name, Date.now() - t0);
  };

  // Operator.
  await page.goto(h.baseUrl + "/login");
  await page.getByLabel("the operator").check();
  await page.getByLabel("Username").fill("test");
  await page.getByLabel("Password").fill("test123");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
  for (let round = 0; round < 5; round++) {
    for (const [name, p] of [["Overview", "/"], ["Tenants", "/tenants"], ["Plans", "/plans"], ["Services", "/services"], ["Events", "/events"]]) await nav(name, p);
    // Search, a filter and the next page of tenants.
    await nav("Tenants", "/tenants");
    let t0 = Date.now();
    await page.getByRole("searchbox", { name: "Search by name or slug" }).fill(`s${run}-${1234 + round}`);
    await page.getByRole("row").filter({ hasText: `s${run}-${1234 + round}` }).first().waitFor();
    record("Tenants search", Date.now() - t0 - 250); // less the search box's 250 ms debounce
    await nav("Tenants", "/tenants");
    t0 = Date.now();
    const rows = await page.locator("main tbody tr").count();
    await page.getByRole("button", { name: "Load more" }).click();
    await page.waitForFunction((n) => document.querySelectorAll("main tbody tr").length > n, rows);
    record("Tenants load more", Date.now() - t0);
    t0 = Date.now();
    await page.locator("main tbody tr a").nth(round).click();
    await shown("/tenants/");
    record("Tenant detail", Date.now() - t0);
  }
  await page.getByRole("button", { name: "Sign out" }).click();

  // Tenant admin of the tenant with the contacts.
  await page.getByRole("textbox", { name: "Tenant" }).fill("demo");
  await page.getByLabel("Email").fill("john.doe@demo.com");
  await page.getByLabel("Password").fill("demo123");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
  for (let round = 0; round < 5; round++) {
    for (const [name, p] of [["Overview", "/"], ["CRM contacts", "/crm/contacts"], ["CRM companies", "/crm/companies"], ["Deal board", "/crm/deals"], ["Users", "/users"], ["Audit log", "/audit"], ["Events", "/events"]]) await nav(name, p);
    await nav("CRM contacts", "/crm/contacts");
    let t0 = Date.now();
    await page.getByRole("searchbox", { name: "Search names and email" }).fill(`c${(4321 * (round + 1)) % CONTACTS}@scale.example`);
    await page.getByRole("cell", { name: `c${(4321 * (round + 1)) % CONTACTS}@scale.example`, exact: true }).waitFor();
    record("Contacts search", Date.now() - t0 - 250);
    await nav("CRM contacts", "/crm/contacts");
    t0 = Date.now();
    const rows = await page.locator("main tbody tr").count();
    await page.getByRole("button", { name: "Load more" }).click();
    await page.waitForFunction((n) => document.querySelectorAll("main tbody tr").length > n, rows);
    record("Contacts load more", Date.now() - t0);
    t0 = Date.now();
    await page.getByRole("combobox", { name: "Stage" }).selectOption("churned");
    await page.waitForFunction(() => document.querySelector('main [aria-busy="false"]') && document.querySelectorAll("main tbody tr").length > 0);
    record("Contacts filter", Date.now() - t0);
  }
  await context.close();

  const all = Object.values(timings).flat().sort((a, b) => a - b);
  for (const [name, xs] of Object.entries(timings)) {
    const s = [...xs].sort((a, b) => a - b);
    console.log(`#   ${name.padEnd(20)} median ${pct(s, 50)} ms, max ${s[s.length - 1]} ms`);
  }
  const p95 = pct(all, 95);
  console.log(`# at scale: navigation -> data shown: n=${all.length} median=${pct(all, 50)} ms p95=${p95} ms max=${all[all.length - 1]} ms`);
  assert.deepEqual(problems, []);
  assert.ok(p95 < 200, `p95 ${p95} ms`);
});
