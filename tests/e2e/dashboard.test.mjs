// CDXPharaoh in headless chromium against the real binary with demo data: sign-in and sessions, every
// page (data shown, no console error, no failed request, axe clean, screenshot), the main flows, the live
// feed, and the time from navigation to the page's data (p95 printed at the end).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import http from "node:http";
import { after, before, test } from "node:test";
import { adminToken, apiCall, SCREENSHOTS, startHarness, superadminToken } from "./harness.mjs";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const timings = []; // ms from a navigation click to the page's data on screen
let h;

before(async () => {
  h = await startHarness();
  console.log(`# dashboard at ${h.baseUrl} (${h.mode}), API at ${h.apiUrl}`);
});

after(async () => {
  if (timings.length) {
    const s = [...timings].sort((a, b) => a - b);
    const pct = (p) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
    console.log(`# navigation -> data shown: n=${s.length} median=${pct(50).toFixed(0)} ms p95=${pct(95).toFixed(0)} ms max=${s[s.length - 1].toFixed(0)} ms`);
  }
  await h?.stop();
});

/** A page with collectors for console errors, page errors, failed requests and HTTP errors. */
async function openPage({ width = 1280, height = 860, colorScheme = "light" } = {}) {
  const context = await h.browser.newContext({ viewport: { width, height }, colorScheme });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => {
    const err = r.failure()?.errorText ?? "";
    if (err.includes("ERR_ABORTED")) return; // a stream or fetch cancelled by navigation: not a failure
    problems.push(`requestfailed: ${r.method()} ${r.url()} ${err}`);
  });
  page.on("response", (r) => r.status() >= 400 && problems.push(`http ${r.status()}: ${r.request().method()} ${r.url()}`));
  return { context, page, problems, reset: () => problems.splice(0) };
}

async function signIn(page, role) {
  await page.goto(h.baseUrl + "/");
  await page.waitForURL(/\/login$/);
  if (role === "superadmin") {
    await page.getByLabel("the operator").check();
    await page.getByLabel("Username").fill("test");
    await page.getByLabel("Password").fill("test123");
  } else {
    await page.getByRole("textbox", { name: "Tenant" }).fill("demo");
    await page.getByLabel("Email").fill("john.doe@demo.com");
    await page.getByLabel("Password").fill("demo123");
  }
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('nav[aria-label="Main"]').waitFor({ state: "attached" });
}

async function axeCheck(page, name) {
  await page.evaluate(AXE); // evaluated through the DevTools protocol: the page's CSP stays strict
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  });
  assert.deepEqual(res, [], `axe on ${name}`);
}

async function waitData(page, pathPrefix) {
  await page.waitForFunction((p) => {
    const m = document.querySelector("main");
    return m && (m.dataset.path ?? "").startsWith(p) && m.querySelector('[data-loaded="true"]') !== null;
  }, pathPrefix);
}

/** Picks every option of every filter of the page's list once: the API must accept each (no 4xx). */
async function exerciseFilters(page) {
  const selects = page.locator('main [role="search"] select');
  const n = await selects.count();
  for (let i = 0; i < n; i++) {
    const values = await selects.nth(i).locator("option").evaluateAll((os) => os.map((o) => o.value));
    for (const v of [...values.slice(1), ""]) {
      await selects.nth(i).selectOption(v);
      await page.waitForFunction(() => document.querySelector('main [aria-busy="true"]') === null);
    }
  }
  return n;
}

/** Clicks a main navigation link and measures until the page shows its data. */
async function visit(page, linkName, pathPrefix, shot) {
  const t0 = Date.now();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: linkName, exact: true }).click();
  await waitData(page, pathPrefix);
  timings.push(Date.now() - t0);
  if (shot) await page.screenshot({ path: path.join(SCREENSHOTS, `${shot}.png`), fullPage: true });
}

test("wrong password: a clear message, no navigation", async () => {
  const { page, context } = await openPage();
  await page.goto(h.baseUrl + "/login");
  await page.getByLabel("the operator").check();
  await page.getByLabel("Username").fill("test");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /invalid|password|credentials/i);
  assert.match(page.url(), /\/login$/);
  await page.screenshot({ path: path.join(SCREENSHOTS, "login-error.png") });
  await axeCheck(page, "login");
  await context.close();
});

for (const role of ["superadmin", "admin"]) {
  test(`${role}: sign in, reload keeps the session, logout ends it`, async () => {
    const { page, context } = await openPage();
    await signIn(page, role);
    assert.equal(await page.evaluate(() => JSON.stringify(localStorage).includes("ey") || JSON.stringify(sessionStorage).includes("ey")), false, "no token in web storage");
    const cookie = (await context.cookies()).find((c) => c.name === "cdx_refresh");
    assert.ok(cookie, "the refresh cookie is set");
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(cookie.path, "/api/v1/auth/refresh");
    assert.equal(await page.evaluate(() => document.cookie.includes("cdx_refresh")), false, "no script can read it");
    await page.reload();
    await page.getByRole("navigation", { name: "Main" }).waitFor({ timeout: 5000 });
    assert.doesNotMatch(page.url(), /\/login/);
    // Two tabs refreshing at once share one cookie: both stay signed in (a spent cookie sent twice would
    // look like a stolen token's reuse and end the session).
    const second = await context.newPage();
    await Promise.all([page.reload(), second.goto(h.baseUrl + "/")]);
    await page.getByRole("navigation", { name: "Main" }).waitFor({ timeout: 5000 });
    await second.getByRole("navigation", { name: "Main" }).waitFor({ timeout: 5000 });
    await second.close();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/login$/);
    assert.equal((await context.cookies()).some((c) => c.name === "cdx_refresh" && c.value), false, "logout clears the cookie");
    await page.reload();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    assert.match(page.url(), /\/login$/);
    await context.close();
  });
}

test("operator: every page shows its data, no console error, no failed request, axe clean", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "superadmin");
  reset();
  for (let round = 0; round < 3; round++) {
    const shot = round === 0;
    await visit(page, "Overview", "/", shot && "operator-overview");
    await visit(page, "Tenants", "/tenants", shot && "operator-tenants");
    await visit(page, "Plans", "/plans", shot && "operator-plans");
    await visit(page, "Services", "/services", shot && "operator-services");
    await visit(page, "Events", "/events", shot && "operator-events");
  }
  for (const name of ["Overview", "Tenants", "Plans", "Services", "Events"]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
    await page.waitForSelector('main [data-loaded="true"]');
    await axeCheck(page, name);
    await exerciseFilters(page);
  }
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Overview", exact: true }).click();
  await waitData(page, "/");
  assert.ok(Number(await page.locator('[data-stat="Tenants"]').innerText()) >= 1, "the platform overview counts the demo tenant");
  // Tenant detail and its tabs.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tenants", exact: true }).click();
  await page.getByRole("link", { name: "Demo Company" }).click();
  await waitData(page, "/tenants/");
  assert.ok(Number(await page.locator('[data-stat="Contacts"]').innerText()) > 0, "demo tenant has contacts");
  await page.screenshot({ path: path.join(SCREENSHOTS, "operator-tenant-detail.png"), fullPage: true });
  await axeCheck(page, "tenant detail");
  for (const tab of ["Users", "API keys", "OAuth clients", "Audit log", "Events"]) {
    await page.getByRole("navigation", { name: "Tenant sections" }).getByRole("link", { name: tab }).click();
    await page.waitForSelector('main [data-loaded="true"]');
    await axeCheck(page, `tenant ${tab}`);
    await exerciseFilters(page);
  }
  await page.getByRole("navigation", { name: "Tenant sections" }).getByRole("link", { name: "Users" }).click();
  await page.getByRole("cell", { name: "john.doe@demo.com", exact: true }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("tenant admin: every page shows its data, no console error, no failed request, axe clean", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  const pages = [
    ["Overview", "/", "admin-overview"],
    ["Users", "/users", "admin-users"],
    ["API keys", "/api-keys", "admin-api-keys"],
    ["OAuth clients", "/oauth-clients", "admin-oauth-clients"],
    ["Audit log", "/audit", "admin-audit"],
    ["Webhooks", "/webhooks", "admin-webhooks"],
    ["CRM contacts", "/crm/contacts", "admin-crm-contacts"],
    ["CRM companies", "/crm/companies", "admin-crm-companies"],
    ["Deal board", "/crm/deals", "admin-crm-deals"],
    ["CMS content", "/cms", "admin-cms-types"],
    ["Media library", "/cms/media", "admin-cms-media"],
    ["CMS locales", "/cms/locales", "admin-cms-locales"],
    ["Events", "/events", "admin-events"],
    ["Billing soon", "/billing", null],
    ["Analytics soon", "/analytics", null],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [name, p, shot] of pages) {
      await visit(page, name, p, round === 0 && shot);
      if (round === 0) await axeCheck(page, name);
      if (round === 0) await exerciseFilters(page);
    }
  }
  // A contact's timeline, a type's entries, an entry's form.
  await visit(page, "CRM contacts", "/crm/contacts");
  await page.locator("main table a").first().click();
  await waitData(page, "/crm/contacts/");
  await page.getByRole("heading", { name: "Timeline" }).waitFor();
  await axeCheck(page, "contact detail");
  await page.screenshot({ path: path.join(SCREENSHOTS, "admin-crm-contact.png"), fullPage: true });
  await visit(page, "CMS content", "/cms");
  await page.getByRole("link", { name: "Article" }).click();
  await waitData(page, "/cms/types/article");
  await exerciseFilters(page);
  await page.locator("main table a").first().click();
  await waitData(page, "/cms/types/article/entries/");
  await axeCheck(page, "entry editor");
  await page.screenshot({ path: path.join(SCREENSHOTS, "admin-cms-entry.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});

test("operator: create a tenant (key shown once), suspend, resume, delete with typed slug", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "superadmin");
  reset();
  await visit(page, "Tenants", "/tenants");
  const slug = `e2e-${Date.now().toString(36)}`;
  await page.getByRole("button", { name: "New tenant" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name").fill("E2E Tenant");
  await dialog.getByLabel("Slug").fill(slug);
  await dialog.getByLabel("First admin's email").fill(`admin@${slug}.example`);
  await dialog.getByLabel("First admin's password").fill("e2e-password-123");
  await dialog.getByRole("button", { name: "Create tenant" }).click();
  const secret = await page.getByTestId("secret-value").innerText();
  assert.match(secret, /^cdx_sk_/);
  await page.screenshot({ path: path.join(SCREENSHOTS, "operator-tenant-created.png") });
  const row = page.getByRole("row").filter({ hasText: slug });
  await row.waitFor();
  await row.getByRole("button", { name: `Suspend ${slug}` }).click();
  await row.getByText("suspended").waitFor();
  const tok = await superadminToken(h);
  assert.equal((await apiCall(h, "GET", `/api/v1/tenants/${slug}`, { token: tok })).body.status, "suspended");
  await row.getByRole("button", { name: `Resume ${slug}` }).click();
  await row.getByText("active").waitFor();
  // Filters and search live in the URL.
  await page.getByRole("combobox", { name: "Status" }).selectOption("suspended");
  await page.waitForURL(/status=suspended/);
  await page.getByText("No tenants match.").waitFor();
  await page.getByRole("combobox", { name: "Status" }).selectOption("");
  await page.getByRole("searchbox", { name: "Search by name or slug" }).fill(slug);
  await page.waitForURL(new RegExp(`q=${slug}`));
  await page.getByRole("row").filter({ hasText: "Demo Company" }).waitFor({ state: "detached" });
  await page.getByRole("button", { name: `Delete ${slug}` }).click();
  const del = page.getByRole("dialog");
  const button = del.getByRole("button", { name: "Delete tenant" });
  assert.equal(await button.isDisabled(), true, "delete needs the typed slug");
  await del.getByLabel(/Type the slug/).fill(slug);
  await button.click();
  await page.getByText("No tenants match.").waitFor();
  assert.equal((await apiCall(h, "GET", `/api/v1/tenants/${slug}`, { token: tok })).status, 404);
  assert.deepEqual(problems, []);
  await context.close();
});

test("admin: create an API key and see it once", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  await visit(page, "API keys", "/api-keys");
  await page.getByRole("button", { name: "New API key" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name").fill("e2e key");
  await dialog.getByRole("button", { name: "Create key" }).click();
  const key = await page.getByTestId("secret-value").innerText();
  assert.match(key, /^cdx_sk_/);
  const r = await fetch(`${h.apiUrl}/api/v1/auth/me`, { headers: { "X-API-Key": key } });
  assert.notEqual(r.status, 401, "the key shown works");
  await page.screenshot({ path: path.join(SCREENSHOTS, "admin-api-key-created.png") });
  await visit(page, "Users", "/users");
  await visit(page, "API keys", "/api-keys");
  await page.getByRole("cell", { name: "e2e key" }).waitFor();
  assert.equal(await page.getByTestId("secret-value").count(), 0, "not shown again");
  assert.equal((await page.content()).includes(key), false);
  assert.deepEqual(problems, []);
  await context.close();
});

test("admin: move a deal on the board (menu and drag and drop)", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  await visit(page, "Deal board", "/crm/deals");
  const tok = await adminToken(h);
  const deals = (await apiCall(h, "GET", "/api/v1/crm/deals?status=open&limit=200", { token: tok })).body.data;
  const pipes = (await apiCall(h, "GET", "/api/v1/crm/pipelines", { token: tok })).body.data;
  const stages = pipes.find((p) => p.is_default).stages.sort((a, b) => a.position - b.position);
  const deal = deals.find((d) => d.stage_id === stages[0].id) ?? deals[0];
  const target = stages.find((s) => s.id !== deal.stage_id);
  // Keyboard way: the card's "Move to" menu.
  await page.getByLabel(`Move ${deal.title} to`).selectOption(target.id);
  await page.locator(`section[data-stage="${target.name}"] li[data-deal="${deal.title}"]`).waitFor();
  assert.equal((await apiCall(h, "GET", `/api/v1/crm/deals/${deal.id}`, { token: tok })).body.stage_id, target.id);
  // Drag and drop back to where it was.
  const home = stages.find((s) => s.id === deal.stage_id);
  await page.locator(`li[data-deal="${deal.title}"]`).dragTo(page.locator(`section[data-stage="${home.name}"]`));
  await page.locator(`section[data-stage="${home.name}"] li[data-deal="${deal.title}"]`).waitFor();
  assert.equal((await apiCall(h, "GET", `/api/v1/crm/deals/${deal.id}`, { token: tok })).body.stage_id, home.id);
  assert.deepEqual(problems, []);
  await context.close();
});

test("admin: write, publish and restore a CMS entry", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  await visit(page, "CMS content", "/cms");
  await page.getByRole("link", { name: "Author" }).click();
  await waitData(page, "/cms/types/author");
  await page.getByRole("button", { name: "New entry" }).click();
  await waitData(page, "/cms/types/author/entries/");
  const name = `E2E Author ${Date.now()}`;
  await page.getByLabel("name", { exact: false }).first().fill(name);
  await page.getByRole("button", { name: "Save draft" }).click();
  await page.getByTestId("entry-note").filter({ hasText: "Draft saved" }).waitFor();
  await page.getByRole("button", { name: "Publish", exact: true }).click();
  await page.getByTestId("entry-note").filter({ hasText: "Published" }).waitFor();
  const id = page.url().split("/").pop();
  const tok = await adminToken(h);
  const e = (await apiCall(h, "GET", `/api/v1/cms/content-types/author/entries/${id}`, { token: tok })).body;
  assert.equal(e.status, "published");
  assert.equal(e.data.name, name);
  // A second version, then back to the first.
  await page.getByLabel("name", { exact: false }).first().fill(`${name} v2`);
  await page.getByRole("button", { name: "Save draft" }).click();
  await page.getByTestId("entry-note").filter({ hasText: "Draft saved" }).waitFor();
  await page.getByRole("button", { name: "Restore v1" }).click();
  await page.getByTestId("entry-note").filter({ hasText: "Version 1 restored" }).waitFor();
  assert.equal(await page.getByLabel("name", { exact: false }).first().inputValue(), name);
  const restored = (await apiCall(h, "GET", `/api/v1/cms/content-types/author/entries/${id}`, { token: tok })).body;
  assert.equal(restored.data.name, name);
  assert.deepEqual(problems, []);
  await context.close();
});

test("admin: CMS locales; a localized field in the entry form round-trips; a draft's preview link", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  const tok = await adminToken(h);
  page.on("dialog", (d) => void d.accept()); // the delete confirmations
  await visit(page, "CMS locales", "/cms/locales");
  const locales = page.getByRole("table", { name: "Locales" });
  await locales.getByRole("row").filter({ has: page.getByRole("cell", { name: "en", exact: true }) }).getByText("default", { exact: true }).waitFor();
  // A bad code: the field's error next to the field.
  await page.getByLabel("Code").fill("Not a locale");
  await page.getByRole("button", { name: "Add locale" }).click();
  await page.getByRole("alert").first().waitFor();
  assert.equal(await page.getByLabel("Code").getAttribute("aria-invalid"), "true", "the code's error is shown at the field");
  // Add fr and de, make de the default and en again, delete de.
  for (const [code, name] of [["fr", "Français"], ["de", "Deutsch"]]) {
    await page.getByLabel("Code").fill(code);
    await page.getByLabel("Name").fill(name);
    await page.getByRole("button", { name: "Add locale" }).click();
    await locales.getByRole("cell", { name, exact: true }).waitFor();
  }
  assert.equal(await page.getByLabel("Code").getAttribute("aria-invalid"), null, "the error is gone");
  await locales.getByRole("button", { name: "Make default de" }).click();
  await locales.getByRole("row").filter({ hasText: "Deutsch" }).getByText("default", { exact: true }).waitFor();
  assert.equal(await locales.getByText("default", { exact: true }).count(), 1, "one default");
  await locales.getByRole("button", { name: "Make default en" }).click();
  await locales.getByRole("button", { name: "Make default de" }).waitFor();
  await locales.getByRole("button", { name: "Delete de" }).click();
  await locales.getByRole("cell", { name: "Deutsch" }).waitFor({ state: "detached" });
  // The default cannot be deleted: the problem's detail is shown, the locale stays.
  await locales.getByRole("button", { name: "Delete en" }).click();
  const alert = page.getByRole("alert").filter({ hasText: "default locale cannot be deleted" });
  await alert.waitFor();
  await page.waitForFunction(() => document.querySelector('main [aria-busy="true"]') === null);
  await locales.getByRole("button", { name: "Delete en" }).waitFor();
  await axeCheck(page, "CMS locales");
  await page.screenshot({ path: path.join(SCREENSHOTS, "admin-cms-locales.png"), fullPage: true });
  const codes = (await apiCall(h, "GET", "/api/v1/cms/locales", { token: tok })).body.data.map((l) => [l.code, l.is_default]);
  assert.deepEqual(codes, [["en", true], ["fr", false]]);

  // A type with a localized required text field (through the API); an entry written in the form.
  const key = `page_${Date.now().toString(36)}`;
  const made = await apiCall(h, "POST", "/api/v1/cms/content-types", { token: tok, body: { key, name: `Page ${key}`, fields: [
    { key: "title", name: "Title", type: "text", required: true, localized: true },
    { key: "summary", name: "Summary", type: "text" },
  ] } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const rulesKey = `rules_${Date.now().toString(36)}`;
  const rules = await apiCall(h, "POST", "/api/v1/cms/content-types", { token: tok, body: { key: rulesKey, name: `Rules ${rulesKey}`, fields: [
    { key: "rank", name: "Rank", type: "integer", min: 1, max: 5 },
  ] } });
  assert.equal(rules.status, 201, JSON.stringify(rules.body));
  await visit(page, "CMS content", "/cms");
  // A field whose type changes in the editor leaves the old type's rules behind (a boolean takes no max).
  await page.getByRole("row").filter({ hasText: `Rules ${rulesKey}` }).getByRole("button", { name: `Edit fields of ${rulesKey}` }).click();
  await page.getByRole("dialog").getByLabel("Field 1 type").selectOption("boolean");
  await page.getByRole("dialog").getByRole("button", { name: "Save content type" }).click();
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  const changed = (await apiCall(h, "GET", `/api/v1/cms/content-types/${rulesKey}`, { token: tok })).body.fields[0];
  assert.deepEqual([changed.type, changed.min, changed.max], ["boolean", undefined, undefined]);
  // The type editor shows and keeps the flag (and the rules it has no input for).
  const typeRow = page.getByRole("row").filter({ hasText: `Page ${key}` });
  await typeRow.getByText("title:text (localized)").waitFor();
  await typeRow.getByRole("button", { name: `Edit fields of ${key}` }).click();
  const dialog = page.getByRole("dialog");
  assert.equal(await dialog.getByLabel("Field 1 localized (a value per locale)").isChecked(), true);
  await dialog.getByRole("button", { name: "Save content type" }).click();
  await dialog.waitFor({ state: "hidden" });
  const kept = (await apiCall(h, "GET", `/api/v1/cms/content-types/${key}`, { token: tok })).body.fields[0];
  assert.deepEqual([kept.name, kept.localized, kept.required], ["Title", true, true]);
  await page.getByRole("link", { name: `Page ${key}` }).click();
  await waitData(page, `/cms/types/${key}`);
  await page.getByRole("button", { name: "New entry" }).click();
  await waitData(page, `/cms/types/${key}/entries/`);
  const labels = await page.locator('main fieldset[data-localized="title"] label').allInnerTexts();
  assert.deepEqual(labels.map((l) => l.replace(/\s*\*$/, "")), ["Title (en)", "Title (fr)"], "one input per locale, the default first");
  await page.getByLabel("Title (en)").fill("Hello");
  await page.getByLabel("Title (fr)").fill("Bonjour");
  await page.getByLabel("Summary").fill("Plain text");
  await page.getByRole("button", { name: "Save draft" }).click();
  await page.getByTestId("entry-note").filter({ hasText: "Draft saved" }).waitFor();
  const id = page.url().split("/").pop();
  // Each save that changes the data adds a version: its row shows once the save is done.
  const versions = (n) => page.waitForFunction((k) => document.querySelectorAll('table tbody tr').length === k && !document.querySelector('main [aria-busy="true"]'), n);
  await versions(1);
  const read = async () => (await apiCall(h, "GET", `/api/v1/cms/content-types/${key}/entries/${id}`, { token: tok })).body;
  assert.deepEqual((await read()).data, { title: { en: "Hello", fr: "Bonjour" }, summary: "Plain text" });
  await page.reload();
  await waitData(page, `/cms/types/${key}/entries/${id}`);
  await page.getByRole("heading", { name: `Page ${key}: Hello` }).waitFor();
  assert.equal(await page.getByLabel("Title (en)").inputValue(), "Hello");
  assert.equal(await page.getByLabel("Title (fr)").inputValue(), "Bonjour");
  assert.equal(await page.getByLabel("Summary").inputValue(), "Plain text");
  await axeCheck(page, "entry editor with a localized field");
  await page.screenshot({ path: path.join(SCREENSHOTS, "admin-cms-entry-localized.png"), fullPage: true });
  // Edit: a new fr value saves; an emptied fr is left out (never ""), en stays.
  await page.getByLabel("Title (fr)").fill("Salut");
  await page.getByRole("button", { name: "Save draft" }).click();
  await versions(2);
  assert.deepEqual((await read()).data.title, { en: "Hello", fr: "Salut" });
  await page.reload();
  await waitData(page, `/cms/types/${key}/entries/${id}`);
  assert.equal(await page.getByLabel("Title (fr)").inputValue(), "Salut");
  await page.getByLabel("Title (fr)").fill("");
  await page.getByRole("button", { name: "Save draft" }).click();
  await versions(3);
  assert.deepEqual((await read()).data.title, { en: "Hello" });
  await page.reload();
  await waitData(page, `/cms/types/${key}/entries/${id}`);
  assert.equal(await page.getByLabel("Title (en)").inputValue(), "Hello");
  assert.equal(await page.getByLabel("Title (fr)").inputValue(), "");
  // A value in a locale deleted since: shown, and the next save drops it (the server drops them).
  assert.equal((await apiCall(h, "POST", "/api/v1/cms/locales", { token: tok, body: { code: "it", name: "Italiano" } })).status, 201);
  assert.equal((await apiCall(h, "PATCH", `/api/v1/cms/content-types/${key}/entries/${id}`, { token: tok, body: { data: { title: { it: "Ciao" } } } })).status, 200);
  assert.equal((await apiCall(h, "DELETE", "/api/v1/cms/locales/it", { token: tok })).status, 204);
  await page.reload();
  await waitData(page, `/cms/types/${key}/entries/${id}`);
  await page.getByTestId("stale-title").filter({ hasText: "Ciao" }).waitFor();
  await versions(4);
  await page.getByRole("button", { name: "Save draft" }).click();
  await versions(5);
  assert.deepEqual((await read()).data.title, { en: "Hello" });
  assert.equal(await page.getByTestId("stale-title").count(), 0);

  // Preview: a 120 s token, the delivery URL with ?preview= to copy and open; it shows the draft to a
  // publishable key's holder.
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  const url = await page.getByTestId("preview-url").innerText();
  assert.match(url, new RegExp(`/api/v1/cms/published/${key}/${id}\\?preview=cdx_pv_`));
  const link = page.getByRole("link", { name: "Open preview" });
  assert.equal(await link.getAttribute("href"), url);
  assert.equal(await link.getAttribute("target"), "_blank");
  assert.equal(await link.getAttribute("rel"), "noopener");
  await page.getByTestId("preview-link").getByText("X-API-Key").waitFor();
  await axeCheck(page, "entry editor with a preview link");
  await page.screenshot({ path: path.join(SCREENSHOTS, "admin-cms-entry-preview.png") });
  const pk = (await apiCall(h, "POST", "/api/v1/auth/api-keys", { token: tok, body: { name: "e2e preview", type: "publishable" } })).body.key;
  const shown = await fetch(url.replace(h.baseUrl, h.apiUrl) + "&locale=fr", { headers: { "X-API-Key": pk } });
  assert.equal(shown.status, 200);
  const body = await shown.json();
  assert.equal(body.preview, true);
  assert.equal(body.data.title, "Hello", "fr falls back to the default locale");
  assert.equal((await fetch(url.replace(/\?preview=.*/, "").replace(h.baseUrl, h.apiUrl), { headers: { "X-API-Key": pk } })).status, 404, "the draft is not published");
  problems.splice(0, problems.length, ...problems.filter((p) => !/(http 422|http 409|status of 422|status of 409)/.test(p))); // the expected refusals
  assert.deepEqual(problems, []);
  await context.close();
});

test("admin: CSV import shows the per-row errors; export downloads the list", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  await visit(page, "CRM contacts", "/crm/contacts");
  await page.getByRole("button", { name: "Import CSV" }).click();
  const dialog = page.getByRole("dialog");
  const tag = Date.now();
  await dialog.getByLabel(/Or paste CSV/).fill(`first_name,last_name,email\nGood,Row,good-${tag}@example.com\nBad,Row,not-an-email\n`);
  await dialog.getByRole("button", { name: "Import", exact: true }).click();
  await dialog.getByTestId("import-summary").filter({ hasText: "1 created, 1 failed" }).waitFor();
  const err = await dialog.getByRole("table", { name: "Rows that failed" }).innerText();
  assert.match(err, /email/);
  await page.screenshot({ path: path.join(SCREENSHOTS, "admin-crm-import.png") });
  await dialog.getByRole("button", { name: "Close dialog" }).click();
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.ok(csv.includes(`good-${tag}@example.com`), "the export has the imported contact");
  // A 422 on create shows the field's error next to the field.
  await page.getByRole("button", { name: "New contact" }).click();
  await page.getByRole("dialog").getByLabel("First name").fill("Short");
  await page.getByRole("dialog").getByLabel("Phone").fill("12");
  await page.getByRole("dialog").getByRole("button", { name: "Create contact" }).click();
  await page.getByRole("dialog").getByRole("alert").waitFor();
  const phone = page.getByRole("dialog").getByLabel("Phone");
  assert.equal(await phone.getAttribute("aria-invalid"), "true", "the field's error is shown at the field");
  problems.splice(0, problems.length, ...problems.filter((p) => !/http 422|status of 422/.test(p))); // the expected validation answer
  assert.deepEqual(problems, []);
  await context.close();
});

test("admin: a webhook endpoint, its secret once, a test event delivered and replayed", async () => {
  const got = [];
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${receiver.address().port}/hook`;
  const { page, problems, reset, context } = await openPage();
  try {
    await signIn(page, "admin");
    reset();
    await visit(page, "Webhooks", "/webhooks");
    await page.getByRole("button", { name: "New endpoint" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("URL").fill(url);
    await dialog.getByLabel("Event types").fill("crm.*");
    await dialog.getByRole("button", { name: "Create endpoint" }).click();
    assert.match(await page.getByTestId("secret-value").innerText(), /^whsec_/);
    const row = page.getByRole("row").filter({ hasText: url });
    await row.getByRole("button", { name: "Send test" }).click();
    await page.getByText("Test event sent.").waitFor();
    const deadline = Date.now() + 5000;
    while (!got.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(got.length >= 1, true, "the receiver got the test event");
    assert.match(String(got[0].headers["webhook-signature"]), /^v1,/);
    assert.equal(JSON.parse(got[0].body).type, "webhook.test");
    await row.getByRole("button", { name: url }).click();
    const deliveries = page.getByRole("table", { name: "Deliveries" });
    await deliveries.getByText("webhook.test").first().waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, "admin-webhooks-deliveries.png"), fullPage: true });
    const before = got.length;
    await deliveries.getByRole("button", { name: "Replay" }).first().click();
    const until = Date.now() + 5000;
    while (got.length === before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(got.length > before, "replay delivered again");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    receiver.close();
  }
});

test("admin: upload to the media library, preview shown under the strict CSP", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  await visit(page, "Media library", "/cms/media");
  // A 2x2 PNG.
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==", "base64");
  const name = `e2e-${Date.now()}.png`;
  await page.getByLabel("File", { exact: true }).setInputFiles({ name, mimeType: "image/png", buffer: png });
  await page.getByLabel("Alt text").fill("a tiny square");
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  const row = page.getByRole("row").filter({ hasText: name });
  await row.waitFor();
  const img = row.getByRole("img", { name: "a tiny square" });
  await img.waitFor();
  assert.match(String(await img.getAttribute("src")), /^blob:/);
  assert.ok(await img.evaluate((el) => el.complete && el.naturalWidth === 2), "the preview decoded");
  assert.deepEqual(problems, []);
  await context.close();
});

test("operator: create a plan and edit its quotas and modules", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "superadmin");
  reset();
  await visit(page, "Plans", "/plans");
  const key = `e2e${Date.now().toString(36)}`;
  await page.getByRole("button", { name: "New plan" }).click();
  let dialog = page.getByRole("dialog");
  await dialog.getByRole("textbox", { name: "Key", exact: true }).fill(key);
  await dialog.getByRole("textbox", { name: "Name", exact: true }).fill("E2E plan");
  await dialog.getByLabel("Requests per minute").fill("120");
  await dialog.getByLabel("billing").uncheck();
  await dialog.getByRole("button", { name: "Save plan" }).click();
  const row = page.getByRole("row").filter({ hasText: key });
  await row.waitFor();
  await row.getByRole("button", { name: `Edit ${key}` }).click();
  dialog = page.getByRole("dialog");
  await dialog.getByLabel("Max users").fill("7");
  await dialog.getByRole("button", { name: "Save plan" }).click();
  await row.getByRole("cell", { name: "7", exact: true }).waitFor();
  const tok = await superadminToken(h);
  const plan = (await apiCall(h, "GET", "/api/v1/plans?limit=200", { token: tok })).body.data.find((p) => p.key === key);
  assert.equal(plan.rate_limit_per_minute, 120);
  assert.equal(plan.max_users, 7);
  assert.equal(plan.modules.includes("billing"), false);
  assert.deepEqual(problems, []);
  await context.close();
});

test("admin: create a user (password shown once), change the role, disable; an OAuth client's secret once", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  await visit(page, "Users", "/users");
  const email = `user-${Date.now()}@demo.example`;
  await page.getByRole("button", { name: "New user" }).click();
  await page.getByRole("dialog").getByLabel("Email").fill(email);
  await page.getByRole("dialog").getByRole("button", { name: "Create user" }).click();
  assert.ok((await page.getByTestId("secret-value").innerText()).startsWith(`${email}: `), "the generated password is shown once");
  const row = page.getByRole("row").filter({ hasText: email });
  await row.getByLabel(`Role of ${email}`).selectOption("ADMIN");
  await row.getByRole("button", { name: "Disable" }).click();
  await row.getByText("disabled").waitFor();
  const tok = await adminToken(h);
  const u = (await apiCall(h, "GET", `/api/v1/auth/users?q=${encodeURIComponent(email)}`, { token: tok })).body.data.find((x) => x.email === email);
  assert.equal(u.role, "ADMIN");
  assert.equal(u.status, "disabled");
  await visit(page, "OAuth clients", "/oauth-clients");
  await page.getByRole("button", { name: "New client" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name").fill("E2E app");
  await dialog.getByLabel("Redirect URIs").fill("https://app.example.com/callback");
  await dialog.getByRole("button", { name: "Create client" }).click();
  assert.match(await page.getByTestId("secret-value").innerText(), / \/ \S+/);
  await page.getByRole("row").filter({ hasText: "E2E app" }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("live feed: an event made through the API shows within 2 s", async () => {
  const { page, problems, reset, context } = await openPage();
  await signIn(page, "admin");
  reset();
  await visit(page, "Events", "/events");
  await page.getByText("live", { exact: true }).waitFor();
  const tok = await adminToken(h);
  const email = `live-${Date.now()}@example.com`;
  const created = page.locator("li[data-event-type='crm.contact.created']");
  const n0 = await created.count();
  const t0 = Date.now();
  const r = await apiCall(h, "POST", "/api/v1/crm/contacts", { token: tok, body: { email, first_name: "Live" } });
  assert.equal(r.status, 201);
  await page.waitForFunction((n) => document.querySelectorAll("li[data-event-type='crm.contact.created']").length > n, n0, { timeout: 2000 });
  const ms = Date.now() - t0;
  console.log(`# live feed: event on screen after ${ms} ms`);
  assert.ok(ms <= 2000);
  // Pause, make an event, resume: nothing is lost.
  await page.getByRole("button", { name: "Pause" }).click();
  const before = await page.locator("li[data-event-type]").count();
  await apiCall(h, "POST", "/api/v1/crm/contacts", { token: tok, body: { email: `paused-${Date.now()}@example.com` } });
  await page.getByText(/new while paused/).waitFor({ timeout: 3000 });
  assert.equal(await page.locator("li[data-event-type]").count(), before);
  await page.getByRole("button", { name: "Resume" }).click();
  await page.waitForFunction((n) => document.querySelectorAll("li[data-event-type]").length > n, before);
  assert.deepEqual(problems, []);
  await context.close();
});

test("keyboard only: sign in, skip to content, move through the navigation", async () => {
  const { page, problems, reset, context } = await openPage();
  await page.goto(h.baseUrl + "/login");
  await page.getByRole("radio", { name: "a tenant admin" }).focus();
  const typeInto = async (label, text) => {
    for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.getAttribute("name"))) !== label; i++) await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), label, `Tab reaches ${label}`);
    await page.keyboard.type(text);
  };
  await typeInto("tenant", "demo");
  await typeInto("email", "john.doe@demo.com");
  await typeInto("password", "demo123");
  await page.keyboard.press("Enter");
  await page.getByRole("navigation", { name: "Main" }).waitFor();
  reset();
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
  // Tab to the Users link and open it with Enter.
  for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.textContent)) !== "Users"; i++) await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await waitData(page, "/users");
  // The focus ring is visible on the focused link.
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none");
  assert.deepEqual(problems, []);
  await context.close();
});

test("phone width and dark theme", async () => {
  const { page, problems, reset, context } = await openPage({ width: 390, height: 844, colorScheme: "dark" });
  await signIn(page, "admin");
  reset();
  assert.equal(await page.evaluate(() => document.documentElement.classList.contains("dark")), true, "dark by prefers-color-scheme");
  await page.getByRole("button", { name: "Menu" }).click();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "CRM contacts" }).click();
  await waitData(page, "/crm/contacts");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no horizontal page scroll at 390 px (${overflow})`);
  await page.screenshot({ path: path.join(SCREENSHOTS, "phone-dark-contacts.png"), fullPage: true });
  await axeCheck(page, "phone dark contacts");
  assert.deepEqual(problems, []);
  await context.close();
});
